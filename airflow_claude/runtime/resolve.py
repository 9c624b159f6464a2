"""Resolve ``$ref`` arguments at run time: step outputs from XCom, run values and params from the run.

Never through Jinja. A run value the run does not have (a manual run triggered without a logical
date has no data interval) fails the step with an error that says how to trigger it instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_claude.errors import StepError
from airflow_claude.plan.refs import Ref, iter_refs, parse_ref, resolve_refs
from airflow_claude.plan.run_fields import RUN_FIELDS, run_values_from_context

_MISSING = object()


@dataclass(frozen=True)
class RunScope:
    """What ``run.*`` and ``params.*`` references resolve to in one run."""

    run: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, context: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> RunScope:
        """The scope of the run ``context`` belongs to; ``params`` defaults to the run's own params."""
        given = params if params is not None else context.get("params") or {}
        return cls(run_values_from_context(context), dict(given))


def resolve_with(args: Any, fetch_output: Callable[[str], Any], scope: RunScope | None = None) -> Any:
    """``args`` with every reference replaced; ``fetch_output(step_id)`` is called once per producer."""
    scope = scope or RunScope()
    outputs: dict[str, Any] = {}
    for _, obj in iter_refs(args):
        ref = parse_ref(obj)
        if ref.namespace == "steps":
            if ref.name not in outputs:
                outputs[ref.name] = fetch_output(ref.name)
        else:
            _check_available(ref, scope)
    try:
        return resolve_refs(args, outputs, scope.run, scope.params)
    except (KeyError, IndexError) as exc:
        raise StepError(f"cannot resolve reference: {exc.args[0]}") from exc


def run_refs_used(args: Any, scope: RunScope) -> dict[str, Any]:
    """The ``run`` and ``params`` values a step's arguments resolved to, by reference text (provenance)."""
    used: dict[str, Any] = {}
    for _, obj in iter_refs(args):
        ref = parse_ref(obj)
        if ref.namespace == "run":
            used[ref.text] = scope.run.get(ref.name)
        elif ref.namespace == "params":
            used[f"params.{ref.name}"] = scope.params.get(ref.name)
    return dict(sorted(used.items()))


def _check_available(ref: Ref, scope: RunScope) -> None:
    if ref.namespace == "run" and scope.run.get(ref.name) is None:
        why = "no logical date and no data interval" if RUN_FIELDS[ref.name].needs_interval else "no such value"
        raise StepError(
            f"'{ref.text}': this run has {why} (a manual run triggered without a logical date). "
            "Trigger it with a logical date (the trigger form's 'Logical date', or 'logical_date' in the REST API), "
            "or pass the value through the plan's params"
        )
    if ref.namespace == "params" and ref.name not in scope.params:
        raise StepError(f"'{ref.text}': the run has no param '{ref.name}'")


def output_fetcher(ti: Any, locate: Callable[[str], tuple[str, int | None]] | None = None) -> Callable[[str], Any]:
    """The one way to read a producer step's output: the ``return_value`` XCom of its task instance.

    ``locate`` maps a step id to (task id, map index): a compiled plan's step is the task named
    after it (the default); a run-time plan's step is one instance of its round's mapped task.
    """

    def fetch(step_id: str) -> Any:
        task_id, map_index = locate(step_id) if locate else (step_id, None)
        where = {} if map_index is None else {"map_indexes": map_index}
        value = ti.xcom_pull(task_ids=task_id, key="return_value", default=_MISSING, **where)
        if value is _MISSING or (map_index is not None and value is None):
            raise StepError(f"step '{step_id}' has no output in XCom; it must succeed before its output is used")
        return value

    return fetch


def resolve_args(args: Any, context: Mapping[str, Any]) -> Any:
    """Resolve references of a compiled plan's step: upstream XCom, the run's values and params."""
    return resolve_with(args, output_fetcher(context["ti"]), RunScope.of(context))


@dataclass(frozen=True)
class StepRefValue:
    """A plan argument holding references, resolved when an operator renders its template fields.

    Airflow resolves any template-field value that has ``resolve(context)``; this keeps plan data
    out of Jinja while letting operator-backed tools consume upstream outputs and run values.
    """

    value: Any

    def iter_references(self) -> tuple[()]:
        return ()  # dependencies come from the plan's depends_on, never implicitly

    def resolve(self, context: Mapping[str, Any]) -> Any:
        try:
            return resolve_args(self.value, context)
        except StepError as exc:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(exc)) from exc  # retrying cannot give the run a data interval
