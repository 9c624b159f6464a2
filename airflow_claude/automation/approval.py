"""The ``approve`` task: a person approves, rejects or edits the whole plan once, in the Airflow UI.

It is Airflow's own ``ApprovalOperator`` (human-in-the-loop, ``awaiting_input`` without a worker
slot). The approver sees the steps, tools, arguments, dependencies and the spend so far, and may
edit the plan JSON; the ``commit`` task validates an edit again before anything runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param
from airflow.sdk.definitions.param import ParamsDict

from airflow_claude.automation.automation import Automation, automation_named
from airflow_claude.automation.contracts import DECISION_KEY, USAGE_KEY, Decision, Proposal, Usage, pull, push
from airflow_claude.catalog.catalog import Catalog
from airflow_claude.factory.docs import fenced
from airflow_claude.observability.records import emit


class PlanApprovalOperator(ApprovalOperator):
    """Approve the plan, or skip it when the run does not require approval (the decision is recorded either way)."""

    template_fields: Sequence[str] = ()  # subject and body are built from data at run time

    def __init__(self, *, automation_id: str, round_number: int, **kwargs: Any) -> None:
        settings = automation_named(automation_id).settings
        kwargs.pop("params", None)  # the DAG's trigger-form params are not approval form fields
        default = "Approve" if settings.on_approval_timeout == "approve" else "Reject"
        super().__init__(
            subject="Approve the plan?",
            body="The plan is shown here when it is ready.",
            defaults=[default] if settings.approval_timeout else None,
            response_timeout=settings.approval_timeout,
            params={"plan_json": Param("", type="string", description="The plan; edit it to change it.")},
            **{"retries": 2, "retry_delay": timedelta(seconds=5), **kwargs},
        )
        self.automation_id = automation_id
        self.round_number = round_number

    @property
    def automation(self) -> Automation:
        return automation_named(self.automation_id)

    def execute(self, context: Any) -> Any:
        automation, ti = self.automation, context["ti"]
        proposal = pull(ti, Proposal, automation.task("plan", self.round_number))
        assert proposal is not None  # the plan task succeeded, or this task would not run
        required = context["params"].get("require_approval", automation.settings.require_approval)
        if not required:
            emit(
                self.log,
                "plan.auto_approved",
                dag_id=ti.dag_id,
                run_id=ti.run_id,
                plan_id=proposal.plan["id"],
                plan_hash=proposal.plan_hash,
            )
            return push(ti, DECISION_KEY, Decision(chosen_options=[self.APPROVE], auto=True))
        usage = pull(ti, Usage, automation.task("plan", self.round_number), key=USAGE_KEY)
        plan = proposal.plan
        self.subject = f"Approve plan {plan['id']} ({len(plan['steps'])} steps)?"
        self.body = approval_markdown(plan, proposal.plan_hash, automation.catalog, usage)
        self.params = ParamsDict(
            {
                "plan_json": Param(
                    json.dumps(plan, indent=2, ensure_ascii=False),
                    type="string",
                    description="The plan as JSON. Edit it to change the plan; it is validated "
                    "again before anything runs.",
                )
            }
        )
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        """Record the decision first: on Reject the base class skips downstream and returns nothing."""
        user = event.get("responded_by_user")
        decision = Decision(
            chosen_options=list(event.get("chosen_options") or []),
            params_input=dict(event.get("params_input") or {}),
            responded_by_user=dict(user) if isinstance(user, dict) else user,
            timed_out="error" in event,
        )
        push(context["ti"], DECISION_KEY, decision)
        return super().execute_complete(context=context, event=event)

    def validate_params_input(self, params_input: Any) -> None:
        """Only the plan field exists; its content is checked by the commit task, not here."""
        unknown = set(params_input or {}) - {"plan_json"}
        if unknown:
            raise ValueError(f"unexpected approval fields: {sorted(unknown)}")


def approval_markdown(plan: dict[str, Any], plan_hash: str, catalog: Catalog, usage: Usage | None) -> str:
    """What the approver reads: the goal, one row per step, arguments as JSON, the spend so far."""
    rows = []
    for step in plan["steps"]:
        tool = catalog.get(step["tool"])
        effect = tool.side_effects if tool else "?"
        deps = ", ".join(step.get("depends_on") or []) or "-"
        rows.append(f"| `{step['id']}` | `{step['tool']}` | {effect} | {deps} |")
    spent = usage.cost_usd if usage is not None else "0"
    mutating = sum(1 for s in plan["steps"] if (t := catalog.get(s["tool"])) and t.side_effects == "mutating")
    return "\n".join(
        [
            f"**Goal**\n\n{fenced(plan['goal'])}\n",
            f"Plan `{plan['id']}` `{plan_hash[:23]}`: {len(plan['steps'])} steps, {mutating} with side effects. "
            f"Planning cost so far: ${spent}.\n",
            "| step | tool | side effects | after |",
            "|---|---|---|---|",
            *rows,
            "",
            "**Arguments**",
            "",
            fenced(
                json.dumps({s["id"]: s.get("args", {}) for s in plan["steps"]}, indent=2, ensure_ascii=False), "json"
            ),
            "",
            "Edit the plan in the form below to change it; the edit is validated before anything runs.",
        ]
    )
