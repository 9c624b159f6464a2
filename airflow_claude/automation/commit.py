"""The ``commit`` task: fix the plan that runs (the proposal, or the approver's validated edit).

Its return value is one :class:`StepTicket` per step, in dependency order, which the round's
``steps`` task maps over: one task instance per step, each waiting only for its own producers.
Steps whose tools name a queue or executor go to that route's ``steps_<route>`` task instead
(``automation/routes.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_claude.automation.automation import Automation
from airflow_claude.automation.contracts import (
    COMMITTED_KEY,
    DECISION_KEY,
    CommittedPlan,
    Decision,
    Proposal,
    StepTicket,
    push,
)
from airflow_claude.automation.routes import hand_out
from airflow_claude.automation.task import AutomationTask
from airflow_claude.fingerprint import canonical_json
from airflow_claude.observability import tracing
from airflow_claude.observability.records import emit
from airflow_claude.plan import graph
from airflow_claude.plan.model import Plan
from airflow_claude.plan.validator import validate_plan


def step_tickets(plan: Plan, task_of: Callable[[str], str]) -> list[StepTicket]:
    """One ticket per step in dependency order; ``task_of(tool)`` is the mapped task its route runs.

    Within each task, producers always have lower map indexes than the steps that read them.
    """
    deps = {s.id: list(s.depends_on) for s in plan.steps}
    by_id = {s.id: s for s in plan.steps}
    where: dict[str, tuple[str, int]] = {}
    taken: dict[str, int] = defaultdict(int)
    for step_id in graph.order(deps):
        task = task_of(by_id[step_id].tool)
        where[step_id] = (task, taken[task])
        taken[task] += 1
    return [
        StepTicket(
            step=by_id[step_id].model_dump(mode="json"),
            task=where[step_id][0],
            index=where[step_id][1],
            after=sorted(where[d] for d in deps[step_id]),
        )
        for step_id in where
    ]


class CommitPlanOperator(AutomationTask):
    """Fix the plan that will run and hand its steps to the round's mapped ``steps`` task."""

    def execute(self, context: Any) -> list[dict[str, Any]]:
        automation, ti = self.automation, context["ti"]
        proposal = self.pull(context, Proposal, "plan")
        decision = self.pull(context, Decision, "approve", key=DECISION_KEY) or Decision()
        assert proposal is not None
        plan_doc, edited = proposal.plan, False
        if decision.edited_text:
            plan_doc, edited = self._edited(context, proposal.plan, decision.edited_text, decision)
        plan = Plan.model_validate(plan_doc)
        r = self.round_number
        tickets = step_tickets(plan, lambda tool: automation.steps_task(automation.catalog[tool].route, r))
        committed = CommittedPlan(
            plan=plan.model_dump(mode="json"),
            plan_hash=plan.hash,
            locations={t.step["id"]: (t.task, t.index) for t in tickets},
            edited=edited,
            approved_by=decision.responded_by_user,
            auto_approved=decision.auto,
        )
        push(ti, COMMITTED_KEY, committed)
        emit(
            self.log,
            "plan.committed",
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            plan_id=plan.id,
            plan_hash=plan.hash,
            steps=len(plan.steps),
            edited=edited,
        )
        return hand_out(ti, automation, tickets, lambda route: automation.steps_task(route, r))

    def _edited(self, context: Any, original: dict[str, Any], text: str, decision: Decision) -> tuple[Any, bool]:
        data, problems = edit_problems(self.automation, context, original, text)
        if data is None:
            return original, False
        if problems:
            raise AirflowFailException("the edited plan is invalid; nothing ran:\n" + "\n".join(problems))
        provenance = dict(data.get("provenance") or {})
        provenance.update(
            created_by=f"human:{decision.who or 'approver'}",
            created_at=datetime.now(UTC).isoformat(),
            parent_plan_id=original["id"],
            parent_plan_hash=Plan.model_validate(original).hash,
        )
        data["provenance"] = provenance
        limits = self.automation.settings.limits(context["params"].get("max_steps"))
        with tracing.validation_span(data.get("id"), source="approval edit") as span:
            result = validate_plan(data, self.automation.catalog, limits=limits)
            tracing.record_validation(span, result)
        plan = result.raise_for_issues()
        return plan.model_dump(mode="json"), True


def edit_problems(automation: Automation, context: Any, original: dict[str, Any], text: str) -> tuple[Any, list[str]]:
    """``(None, [])`` for an unchanged plan; else the edited document and its validation problems.

    Both the commit task and the review call this, so the review can say why an edit was refused
    without relying on anything the failed commit task wrote.
    """
    from airflow_claude.plan.loader import parse_json_text

    data, issues = parse_json_text(text, file="approval form")
    if not issues and canonical_json(data) == canonical_json(original):
        return None, []
    if not issues:
        limits = automation.settings.limits(context["params"].get("max_steps"))
        issues = validate_plan(data, automation.catalog, limits=limits, file="approval form").issues
    return data, [str(issue) for issue in issues]
