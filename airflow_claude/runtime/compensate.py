"""Compensation (a saga): when a run fails, undo the effects of the mutating steps that finished.

Each compensable step gets a task ``saga.undo_<step>``; they run after every step, in reverse
dependency order, and only when some step failed and their own step succeeded. Each undo is a
tool call like any other (its own idempotency key, ledger, provenance and records). The task
``saga.outcome`` then fails the run, saying what was undone and what could not be.

:func:`undo_step` is the one compensation path: these tasks and an automation's ``saga.undo``
both call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_claude.catalog.catalog import Catalog
from airflow_claude.catalog.tool import Compensation, Tool
from airflow_claude.errors import StepError
from airflow_claude.observability import tracing
from airflow_claude.observability.records import emit
from airflow_claude.plan.refs import Ref, lookup
from airflow_claude.runtime.execute import run_step
from airflow_claude.runtime.provenance import StepIdentity
from airflow_claude.runtime.resolve import resolve_args
from airflow_claude.runtime.states import FAILED, task_states

SAGA_GROUP = "saga"


def compensation_args(comp: Compensation, step_id: str, args: dict[str, Any], output: Any) -> dict[str, Any]:
    """The compensating tool's arguments, taken from the step's resolved arguments and its output."""
    derived: dict[str, Any] = {}
    for param, source in sorted(comp.args.items()):
        kind, _, path = source.partition(".")
        try:
            if kind == "args":
                derived[param] = args[path]
            else:
                derived[param] = lookup(output, Ref("steps", step_id, tuple(path.split(".")) if path else ()))
        except (KeyError, IndexError) as exc:
            raise StepError(f"cannot derive compensation argument {param!r} from {source!r}: {exc}") from exc
    return derived


class CompensateStepOperator(BaseOperator):
    """Undo one finished mutating step of a failed run; skip when there is nothing to undo."""

    template_fields: Sequence[str] = ()
    ui_color = "#fde2c4"

    catalog: Catalog
    tool: Tool
    step_id: str
    step_args: dict[str, Any]
    identity: StepIdentity
    step_task_ids: tuple[str, ...]

    # No ``__init__`` of its own, like PlanStepOperator: one pass of Airflow's argument handling per task.
    @classmethod
    def for_step(
        cls,
        *,
        catalog: Catalog,
        tool: Tool,
        step_id: str,
        step_args: dict[str, Any],
        identity: StepIdentity,
        step_task_ids: Sequence[str],
        **kwargs: Any,
    ) -> CompensateStepOperator:
        """The undo task of one step; ``kwargs`` are ``BaseOperator``'s (task_id, trigger_rule, ...)."""
        task = cls(**kwargs)
        task.catalog = catalog
        task.tool = tool
        task.step_id = step_id
        task.step_args = step_args
        task.identity = identity
        task.step_task_ids = tuple(step_task_ids)  # shared by every undo task of a plan; not GC-tracked
        return task

    def execute(self, context: Any) -> Any:
        ti = context["ti"]
        states = task_states(ti, self.step_task_ids)
        failed = sorted(t for t, s in states.items() if s in FAILED)
        if not failed:
            raise AirflowSkipException("no step failed: nothing to undo")
        if states.get(self.step_id) != "success":
            raise AirflowSkipException(f"step '{self.step_id}' did not finish: it has no effect to undo")
        output = ti.xcom_pull(task_ids=self.step_id, key="return_value")
        args = resolve_args(self.step_args, context)
        result = undo_step(
            self.catalog, self.tool, self.identity, args, output, context, log=self.log, because_failed=failed
        )
        return {"undone": self.step_id, "with": result.undo_tool, "result": result.output}


@dataclass(frozen=True)
class Undone:
    undo_tool: str
    output: Any


def undo_step(
    catalog: Catalog,
    tool: Tool,
    identity: StepIdentity,
    args: dict[str, Any],
    output: Any,
    context: Any,
    *,
    log: Any,
    **record_fields: Any,
) -> Undone:
    """The one compensation path: call ``tool``'s compensating tool for a finished step.

    ``args`` are the step's resolved arguments and ``output`` its output; the undo is a step of
    its own (``undo_<step>``: its own idempotency key, ledger, provenance and records), inside a
    ``compensate <step>`` span.
    """
    assert tool.compensation is not None
    ti = context["ti"]
    undo_tool = catalog[tool.compensation.tool]
    derived = compensation_args(tool.compensation, identity.step_id, args, output)
    undo_identity = StepIdentity(
        identity.plan_id,
        identity.plan_hash,
        f"undo_{identity.step_id}",
        undo_tool.name,
        undo_tool.version,
        identity.catalog_fingerprint,
    )
    attributes = {
        "airflow_claude.plan.id": identity.plan_id,
        "airflow_claude.step.id": identity.step_id,
        "airflow_claude.tool.name": undo_tool.name,
    }
    with tracing.span(f"compensate {identity.step_id}", attributes):
        result = run_step(undo_tool, derived, undo_identity, context, fetch_output=_no_refs, log=log)
    emit(
        log,
        "step.compensated",
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        plan_id=identity.plan_id,
        step_id=identity.step_id,
        tool=undo_tool.name,
        **record_fields,
    )
    return Undone(undo_tool.name, result)


class SagaOutcomeOperator(BaseOperator):
    """Ends a plan with compensations: fails the run when a step failed, listing what was undone."""

    template_fields: Sequence[str] = ()
    ui_color = "#d8f0d8"

    def __init__(
        self, *, step_task_ids: Sequence[str], undo_task_ids: dict[str, str], plan_id: str, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.step_task_ids = tuple(step_task_ids)
        self.undo_task_ids = dict(undo_task_ids)
        self.plan_id = plan_id

    def execute(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        states = task_states(ti, [*self.step_task_ids, *self.undo_task_ids.values()])
        failed = sorted(t for t in self.step_task_ids if states.get(t) in FAILED)
        completed = {t for t in self.step_task_ids if states.get(t) == "success"}
        undone = sorted(s for s, u in self.undo_task_ids.items() if states.get(u) == "success")
        not_undone = sorted(s for s, u in self.undo_task_ids.items() if s in completed and states.get(u) != "success")
        outcome: dict[str, Any] = {
            "plan_id": self.plan_id,
            "failed_steps": failed,
            "undone": undone,
            "not_undone": not_undone,
            "status": "failed" if failed else "succeeded",
        }
        ti.xcom_push(key="outcome", value=outcome)
        emit(self.log, "plan.outcome", dag_id=ti.dag_id, run_id=ti.run_id, **outcome)
        if failed:
            raise AirflowFailException(
                f"steps {failed} failed; undone: {undone or 'nothing'}; could not undo: {not_undone or 'nothing'}"
            )
        return outcome


def _no_refs(step_id: str) -> Any:
    raise StepError(f"a compensation cannot refer to step '{step_id}'")
