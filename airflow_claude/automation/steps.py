"""The ``steps`` task of a round: one mapped task instance per step of the committed plan.

Each instance is labelled with its step id in the Grid. A step with producers waits for them in
the triggerer (no worker slot held) and runs as soon as its own producers succeeded, not when a
whole level did; if one of them did not succeed, the step is skipped and recorded ``not_run``.
Steps of tools routed to a queue run in that route's ``steps_<route>`` task, the same operator.
"""

from __future__ import annotations

import json
import time
from typing import Any

from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy
from airflow.sdk.exceptions import AirflowSkipException

from airflow_claude.automation.automation import Automation, automation_named
from airflow_claude.automation.contracts import (
    COMMITTED_KEY,
    STEP_RECORD_KEY,
    CommittedPlan,
    StepRecord,
    StepTicket,
    push,
)
from airflow_claude.automation.task import AutomationTask
from airflow_claude.automation.waiting import InstancesFinishedTrigger, event_states
from airflow_claude.errors import StepError
from airflow_claude.observability import lineage
from airflow_claude.observability.redaction import redact_value
from airflow_claude.plan.params import param_values
from airflow_claude.runtime.execute import run_step
from airflow_claude.runtime.provenance import PROVENANCE_XCOM_KEY, StepIdentity
from airflow_claude.runtime.resolve import RunScope, output_fetcher, run_refs_used
from airflow_claude.runtime.states import all_finished, instance_states
from airflow_claude.ui.links import RunPageLink


def plan_scope(plan: dict[str, Any], context: Any) -> RunScope:
    """``run`` and ``params`` of a run-time plan: its declared params over the run's conf, checked here."""
    return RunScope.of(context, param_values(plan.get("params") or {}, context["params"]))


def committed_outputs(ti: Any, committed: CommittedPlan) -> Any:
    """Outputs of this round's steps: the instance of the route's ``steps`` task that ran each."""
    return output_fetcher(ti, lambda step_id: committed.locations[step_id])


class StepRetryPolicy(RetryPolicy):
    """Per-step retries for mapped steps: ``retries`` can only be set once for a mapped task."""

    def __init__(self, automation_id: str) -> None:
        self.automation_id = automation_id

    @property
    def automation(self) -> Automation:
        return automation_named(self.automation_id)

    def evaluate(self, exception: BaseException, try_number: int, max_tries: int, context: Any = None) -> RetryDecision:
        if isinstance(exception, StepError):
            return RetryDecision.fail("the step's arguments or output break the tool's contract")
        task = context["ti"].task if context else None
        ticket = getattr(task, "ticket", None)
        step = ticket.get("step") if isinstance(ticket, dict) else None
        if isinstance(step, dict):
            tool = self.automation.catalog.get(step.get("tool", ""))
            allowed = step.get("retries")
            allowed = allowed if allowed is not None else (tool.default_retries if tool else 0)
            if try_number > allowed:
                return RetryDecision.fail(f"step '{step.get('id')}' used its {allowed} retries")
        return RetryDecision()

    def serialize(self) -> dict[str, Any]:
        return {"policy": "airflow_claude.StepRetryPolicy", "automation_id": self.automation_id}


def steps_alias(automation_id: str) -> Any:
    """The ``AssetAlias`` of an automation's steps: each step adds its tool's output Assets to it at run time."""
    from airflow.sdk import AssetAlias

    return AssetAlias(f"airflow_claude.steps.{automation_id}")


class RunPlanStepOperator(lineage.LineageMixin, AutomationTask):
    """One step of a plan made at run time: waits for its producers, then runs its tool once.

    When a catalog tool declares output Assets, the task's outlet is the automation's
    :func:`steps_alias` (set by the group); a step whose tool declares them adds them to the alias
    when it succeeds, so DAGs scheduled on those Assets are triggered.
    """

    ui_color = "#efe6fb"
    operator_extra_links = (RunPageLink(),)  # "Claude run": the run page of the plugin

    def __init__(self, *, ticket: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ticket = ticket

    def execute(self, context: Any) -> Any:
        ticket = StepTicket.model_validate(self.ticket)
        context["step_id"] = ticket.step["id"]  # the Grid label (map_index_template)
        if not ticket.after:
            return self._run(context, ticket)
        ti = context["ti"]
        states = instance_states(ti.get_task_states, ti.dag_id, ti.run_id, ticket.after)
        if all_finished(states):
            return self._after_producers(context, ticket, states)
        self.defer(
            trigger=InstancesFinishedTrigger(ti.dag_id, ti.run_id, ticket.after),
            method_name="producers_finished",
        )

    def producers_finished(self, context: Any, event: dict[str, Any]) -> Any:
        ticket = StepTicket.model_validate(self.ticket)
        context["step_id"] = ticket.step["id"]
        states = event_states(event)
        if set(states) != {(task, index) for task, index in ticket.after}:
            raise RuntimeError(f"the wait for step '{ticket.step['id']}' ended with an unexpected event: {event}")
        return self._after_producers(context, ticket, states)

    def _after_producers(self, context: Any, ticket: StepTicket, states: dict[tuple[str, int], str | None]) -> Any:
        failed = {where for where, state in states.items() if state != "success"}
        if not failed:
            return self._run(context, ticket)
        committed = self.pull(context, CommittedPlan, "commit", key=COMMITTED_KEY)
        assert committed is not None
        names = sorted(step_id for step_id, where in committed.locations.items() if tuple(where) in failed)
        reason = f"not run: {', '.join(names)} did not succeed"
        record = StepRecord(step_id=ticket.step["id"], tool=ticket.step["tool"], status="not_run", error=reason)
        push(context["ti"], STEP_RECORD_KEY, record)
        raise AirflowSkipException(reason)

    def _run(self, context: Any, ticket: StepTicket) -> Any:
        ti, automation, step = context["ti"], self.automation, ticket.step
        committed = self.pull(context, CommittedPlan, "commit", key=COMMITTED_KEY)
        assert committed is not None
        tool = automation.catalog[step["tool"]]
        identity = StepIdentity(
            committed.plan["id"],
            committed.plan_hash,
            step["id"],
            tool.name,
            tool.version,
            automation.catalog.fingerprint,
        )
        started = time.monotonic()
        record = StepRecord(step_id=step["id"], tool=tool.name, attempts=ti.try_number, status="failed")
        try:
            scope = plan_scope(committed.plan, context)
            output = run_step(
                tool,
                step.get("args", {}),
                identity,
                context,
                fetch_output=committed_outputs(ti, committed),
                log=self.log,
                scope=scope,
            )
        except BaseException as exc:
            record.error = f"{type(exc).__name__}: {exc}"[:2000]
            record.duration_s = round(time.monotonic() - started, 3)
            push(ti, STEP_RECORD_KEY, record)
            raise
        self._lineage_after(context, tool, ticket)
        record.status = "success"
        record.run_values = redact_value(run_refs_used(step.get("args", {}), scope))
        record.duration_s = round(time.monotonic() - started, 3)
        record.output = preview(output, automation.settings.review_output_chars)
        push(ti, STEP_RECORD_KEY, record)
        return output

    def _lineage_after(self, context: Any, tool: Any, ticket: StepTicket) -> None:
        """The tool's output Assets through the alias (always), its facet for OpenLineage (when on)."""
        self._airflow_claude_assets = (tool.inlets, tool.outlets)
        if tool.outlets and context.get("outlet_events") is not None:
            events = context["outlet_events"][steps_alias(self.automation_id)]
            for asset in tool.outlets:
                events.add(asset, extra={"step_id": ticket.step["id"], "tool": tool.name})
        if lineage.lineage_active():
            ti = context["ti"]
            stamp = ti.xcom_pull(task_ids=self.task_id, key=PROVENANCE_XCOM_KEY, map_indexes=ti.map_index)
            if isinstance(stamp, dict):
                extra = {"automation_id": self.automation_id, "round_number": self.round_number}
                lineage.stash(self, lineage.fields_from_provenance(stamp, **extra))

    # OpenLineage: the step's facet (from the ticket when it did not run) and its tool's assets
    def lineage_fields(self, task_instance: Any) -> dict[str, Any] | None:
        step = self.ticket.get("step") if isinstance(self.ticket, dict) else None
        if not isinstance(step, dict):
            return None
        tool = self.automation.catalog.get(str(step.get("tool", "")))
        return lineage.facet_payload(
            {
                "kind": "plan_step",
                "stepId": step.get("id"),
                "tool": step.get("tool"),
                "toolVersion": tool.version if tool else None,
                "catalogFingerprint": self.automation.catalog.fingerprint,
                "tryNumber": getattr(task_instance, "try_number", None),
                "automationId": self.automation_id,
                "round": self.round_number,
            }
        )

    def lineage_assets(self) -> tuple[Any, Any]:
        assets = getattr(self, "_airflow_claude_assets", None)
        if assets is None:
            step = self.ticket.get("step") if isinstance(self.ticket, dict) else None
            tool = self.automation.catalog.get(str(step.get("tool", ""))) if isinstance(step, dict) else None
            assets = (tool.inlets, tool.outlets) if tool else ((), ())
        return assets


def preview(value: Any, limit: int) -> Any:
    text = json.dumps(value, sort_keys=True, default=str)
    return value if len(text) <= limit else text[: limit - 15] + f"... [{len(text)} chars]"
