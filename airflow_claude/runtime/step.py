"""The operator that runs one plan step backed by a Python tool.

Its arguments are data: ``template_fields`` is empty, so nothing from a plan is ever rendered.
References are resolved from upstream XCom, the resolved arguments are checked against the
tool's input schema, the tool runs with its :class:`ToolContext`, its output is checked
against the output schema, redacted, and returned (XCom ``return_value``) beside a provenance
stamp (XCom ``airflow_claude_provenance``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException
from pydantic import BaseModel

from airflow_claude.catalog.tool import PythonTool, ToolContext
from airflow_claude.errors import StepError
from airflow_claude.fingerprint import sha256_of
from airflow_claude.observability.records import emit
from airflow_claude.observability.redaction import redact_value
from airflow_claude.runtime.provenance import (
    PROVENANCE_XCOM_KEY,
    StepIdentity,
    idempotency_key,
    provenance_record,
)
from airflow_claude.runtime.resolve import resolve_args


class PlanStepOperator(BaseOperator):
    """Run one plan step: one call of one Python tool with validated, resolved arguments."""

    template_fields: Sequence[str] = ()  # plan arguments are data: never Jinja-rendered
    ui_color = "#efe6fb"

    def __init__(self, *, tool: PythonTool, step_args: dict[str, Any], identity: StepIdentity, **kwargs: Any):
        super().__init__(**kwargs)
        self.tool = tool
        self.step_args = step_args
        self.identity = identity

    def execute(self, context: Any) -> Any:
        ti = context["ti"]
        dag_id, run_id, try_number = ti.dag_id, ti.run_id, ti.try_number
        base = {"dag_id": dag_id, "run_id": run_id, "plan_id": self.identity.plan_id, "step_id": ti.task_id}
        try:
            args = resolve_args(self.step_args, ti)
            self._check(self.tool.input_validator, args, "arguments")
        except StepError as exc:
            emit(self.log, "step.failed", **base, error=str(exc), retryable=False)
            raise AirflowFailException(str(exc)) from exc
        fingerprint = sha256_of(args)
        key = idempotency_key(dag_id, run_id, ti.task_id, args)
        emit(
            self.log,
            "step.started",
            **base,
            tool=self.tool.name,
            tool_version=self.tool.version,
            try_number=try_number,
            idempotency_key=key,
        )
        started = time.monotonic()
        tool_context = ToolContext(
            idempotency_key=key,
            dag_id=dag_id,
            run_id=run_id,
            step_id=ti.task_id,
            plan_id=self.identity.plan_id,
            plan_hash=self.identity.plan_hash,
            try_number=try_number,
            log=self.log,
            airflow_context=context,
        )
        try:
            output = _jsonable(self.tool.call(args, tool_context))
        except Exception as exc:
            emit(
                self.log,
                "step.failed",
                **base,
                error=f"{type(exc).__name__}: {exc}",
                retryable=True,
                try_number=try_number,
                duration_s=round(time.monotonic() - started, 6),
            )
            raise
        try:
            self._check(self.tool.output_validator, output, "output")
        except StepError as exc:
            raise AirflowFailException(str(exc)) from exc
        output = redact_value(output)
        stamp = provenance_record(
            self.identity, dag_id=dag_id, run_id=run_id, try_number=try_number, key=key, args_fingerprint=fingerprint
        )
        ti.xcom_push(key=PROVENANCE_XCOM_KEY, value=stamp)
        emit(
            self.log,
            "step.finished",
            **base,
            tool=self.tool.name,
            try_number=try_number,
            duration_s=round(time.monotonic() - started, 6),
            idempotency_key=key,
        )
        return output

    def _check(self, validator: Any, value: Any, what: str) -> None:
        if validator is None:
            return
        errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
        if errors:
            detail = "; ".join(f"{'.'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in errors[:10])
            raise StepError(f"step '{self.task_id}': tool '{self.tool.name}' {what} break its schema: {detail}")


def _jsonable(value: Any) -> Any:
    """Tools may return pydantic models; XCom and references want plain JSON data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value
