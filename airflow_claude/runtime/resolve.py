"""Resolve ``$ref`` arguments at run time from the producers' XCom; never through Jinja."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_claude.errors import StepError
from airflow_claude.plan.refs import iter_refs, parse_ref, resolve_refs

_MISSING = object()


def pull_outputs(args: Any, ti: Any) -> dict[str, Any]:
    """Fetch the output of every step ``args`` refers to, once per producer."""
    outputs: dict[str, Any] = {}
    for _, obj in iter_refs(args):
        step_id = parse_ref(obj).step_id
        if step_id in outputs:
            continue
        value = ti.xcom_pull(task_ids=step_id, key="return_value", default=_MISSING)
        if value is _MISSING:
            raise StepError(f"step '{step_id}' has no output in XCom; it must succeed before its output is used")
        outputs[step_id] = value
    return outputs


def resolve_args(args: Any, ti: Any) -> Any:
    """``args`` with every reference replaced by the referenced value; a clear error on a bad path."""
    try:
        return resolve_refs(args, pull_outputs(args, ti))
    except (KeyError, IndexError) as exc:
        raise StepError(f"cannot resolve reference: {exc.args[0]}") from exc


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
