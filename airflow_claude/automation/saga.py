"""The saga of an automation: when the run fails, undo its finished mutating steps, newest first.

``saga.to_undo`` (after every review) lists the finished compensable steps of every round, the
newest round first and, within a round, a step before the steps it depends on. ``saga.undo`` is
mapped over that list: each instance waits in the triggerer for the undos that must go first,
then calls the compensating tool through the one compensation path of the package. An undo whose
compensating tool names a queue runs in that route's ``saga.undo_<route>`` task.
"""

from __future__ import annotations

from typing import Any

from airflow_claude.automation.contracts import (
    COMMITTED_KEY,
    UNDO_RECORD_KEY,
    CommittedPlan,
    RoundReview,
    UndoRecord,
    UndoTicket,
    push,
)
from airflow_claude.automation.routes import hand_out
from airflow_claude.automation.steps import committed_outputs, plan_scope
from airflow_claude.automation.task import AutomationTask
from airflow_claude.automation.waiting import InstancesFinishedTrigger
from airflow_claude.plan import graph
from airflow_claude.runtime.compensate import undo_step
from airflow_claude.runtime.provenance import StepIdentity
from airflow_claude.runtime.resolve import resolve_with
from airflow_claude.runtime.states import all_finished, instance_states


def final_verdict(task: AutomationTask, context: Any) -> str | None:
    """The verdict of the last round that was reviewed (None when no round got that far)."""
    for r in range(task.automation.rounds, 0, -1):
        review = task.pull(context, RoundReview, "review", round_number=r)
        if review is not None:
            return review.verdict
    return None


def run_is_failing(task: AutomationTask, context: Any) -> bool:
    verdict = final_verdict(task, context)
    if verdict in ("done", "rejected"):
        return False
    return not (verdict == "escalate" and task.automation.settings.on_escalate == "notify")


class UndoListOperator(AutomationTask):
    """What the saga must undo, in order; nothing when the run is not failing."""

    ui_color = "#fde2c4"

    def execute(self, context: Any) -> list[dict[str, Any]]:
        if not run_is_failing(self, context):
            return []
        ti, catalog = context["ti"], self.automation.catalog
        tickets: list[UndoTicket] = []
        for r in range(self.automation.rounds, 0, -1):
            committed = self.pull(context, CommittedPlan, "commit", key=COMMITTED_KEY, round_number=r)
            if committed is None:
                continue
            states = instance_states(ti.get_task_states, ti.dag_id, ti.run_id, committed.locations.values())
            steps = {s["id"]: s for s in committed.plan["steps"]}
            deps = {s["id"]: s.get("depends_on") or [] for s in committed.plan["steps"]}
            finished = [
                step_id
                for step_id in reversed(graph.order(deps))  # a step before the steps it depends on
                if states.get(tuple(committed.locations[step_id])) == "success"  # type: ignore[arg-type]
                and (tool := catalog.get(steps[step_id]["tool"])) is not None
                and tool.compensation is not None
            ]
            ancestors = graph.ancestors(deps)
            newer = [(t.task, t.index) for t in tickets]  # every undo of a later round goes first
            placed: dict[str, tuple[str, int]] = {}
            for step_id in finished:
                undo_tool = catalog[catalog[steps[step_id]["tool"]].compensation.tool]  # type: ignore[union-attr]
                task = self.automation.undo_task(undo_tool.route)
                index = sum(1 for t in tickets if t.task == task)
                dependents = [placed[o] for o in placed if step_id in ancestors[o]]
                placed[step_id] = (task, index)
                tickets.append(
                    UndoTicket(step=steps[step_id], round=r, task=task, index=index, after=sorted(newer + dependents))
                )
        return hand_out(ti, self.automation, tickets, self.automation.undo_task)


class UndoStepOperator(AutomationTask):
    """Undo one finished mutating step of a failing run (one mapped instance, labelled ``undo <step>``)."""

    ui_color = "#fde2c4"

    def __init__(self, *, ticket: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ticket = ticket

    def execute(self, context: Any) -> Any:
        ticket = UndoTicket.model_validate(self.ticket)
        context["step_id"] = f"undo {ticket.step['id']}"
        ti = context["ti"]
        if ticket.after and not all_finished(instance_states(ti.get_task_states, ti.dag_id, ti.run_id, ticket.after)):
            self.defer(
                trigger=InstancesFinishedTrigger(ti.dag_id, ti.run_id, ticket.after),
                method_name="earlier_undos_finished",
            )
        return self._undo(context, ticket)

    def earlier_undos_finished(self, context: Any, event: dict[str, Any]) -> Any:
        """The undos before this one finished (whatever their outcome): undo this step now."""
        ticket = UndoTicket.model_validate(self.ticket)
        context["step_id"] = f"undo {ticket.step['id']}"
        return self._undo(context, ticket)

    def _undo(self, context: Any, ticket: UndoTicket) -> Any:
        ti, catalog, step = context["ti"], self.automation.catalog, ticket.step
        committed = self.pull(context, CommittedPlan, "commit", key=COMMITTED_KEY, round_number=ticket.round)
        assert committed is not None
        tool = catalog[step["tool"]]
        fetch = committed_outputs(ti, committed)
        args = resolve_with(step.get("args", {}), fetch, plan_scope(committed.plan, context))
        identity = StepIdentity(
            committed.plan["id"], committed.plan_hash, step["id"], tool.name, tool.version, catalog.fingerprint
        )
        undone = undo_step(catalog, tool, identity, args, fetch(step["id"]), context, log=self.log)
        push(ti, UNDO_RECORD_KEY, UndoRecord(step_id=step["id"], round=ticket.round, undo_tool=undone.undo_tool))
        return undone.output
