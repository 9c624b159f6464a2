"""Resolve ``$ref`` arguments at run time from the producers' XCom; never through Jinja."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_claude.errors import StepError
from airflow_claude.plan.refs import iter_refs, parse_ref, resolve_refs

_MISSING = object()


def resolve_with(args: Any, fetch_output: Callable[[str], Any]) -> Any:
    """``args`` with every reference replaced; ``fetch_output(step_id)`` is called once per producer."""
    outputs: dict[str, Any] = {}
    for _, obj in iter_refs(args):
        step_id = parse_ref(obj).step_id
        if step_id not in outputs:
            outputs[step_id] = fetch_output(step_id)
    try:
        return resolve_refs(args, outputs)
    except (KeyError, IndexError) as exc:
        raise StepError(f"cannot resolve reference: {exc.args[0]}") from exc


def xcom_fetcher(ti: Any) -> Callable[[str], Any]:
    """Outputs of a compiled plan's steps: the ``return_value`` XCom of the task named after the step."""

    def fetch(step_id: str) -> Any:
        value = ti.xcom_pull(task_ids=step_id, key="return_value", default=_MISSING)
        if value is _MISSING:
            raise StepError(f"step '{step_id}' has no output in XCom; it must succeed before its output is used")
        return value

    return fetch


def resolve_args(args: Any, ti: Any) -> Any:
    """Resolve references of a compiled plan's step from its upstream tasks' XCom."""
    return resolve_with(args, xcom_fetcher(ti))


@dataclass(frozen=True)
class StepRefValue:
    """A plan argument holding references, resolved when an operator renders its template fields.

    Airflow resolves any template-field value that has ``resolve(context)``; this keeps plan data
    out of Jinja while letting operator-backed tools consume upstream outputs.
    """

    value: Any

    def iter_references(self) -> tuple[()]:
        return ()  # dependencies come from the plan's depends_on, never implicitly

    def resolve(self, context: Mapping[str, Any]) -> Any:
        return resolve_args(self.value, context["ti"])
