"""Run one plan step, wherever its task comes from (a compiled plan or a plan made at run time).

Order of work: resolve references from the producers' outputs, check the resolved arguments
against the tool's input schema (a failure is final: retrying cannot fix it), compute the
idempotency key, call the tool, check the output, mask secrets, stamp provenance.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from airflow.sdk.exceptions import AirflowFailException
from opentelemetry.trace import Span
from pydantic import BaseModel

from airflow_claude.catalog.tool import OperatorTool, PythonTool, Tool, ToolContext
from airflow_claude.errors import StepError
from airflow_claude.fingerprint import sha256_of
from airflow_claude.observability import tracing
from airflow_claude.observability.records import emit
from airflow_claude.observability.redaction import masked_logger, redact_value
from airflow_claude.runtime.circuit import CircuitBreaker, CircuitOpen
from airflow_claude.runtime.ledger import StepLedger
from airflow_claude.runtime.provenance import (
    PROVENANCE_XCOM_KEY,
    StepIdentity,
    idempotency_key,
    provenance_record,
)
from airflow_claude.runtime.resolve import RunScope, resolve_with, run_refs_used

OutputFetcher = Callable[[str], Any]


def run_step(
    tool: Tool,
    raw_args: dict[str, Any],
    identity: StepIdentity,
    context: Any,
    *,
    fetch_output: OutputFetcher,
    log: Any,
    scope: RunScope | None = None,
) -> Any:
    """Run ``tool`` for one step and return its (masked, JSON-ready) output.

    ``scope`` holds what ``run.*`` and ``params.*`` references resolve to (default: the run's own).
    The step is a ``step <id>`` span and its tool call an ``execute_tool <tool>`` span under it.
    """
    with tracing.span(f"step {identity.step_id}", step_attributes(identity, context["ti"].try_number)) as span:
        return _run_step(tool, raw_args, identity, context, fetch_output, log, scope, span)


def step_attributes(identity: StepIdentity, try_number: int) -> dict[str, Any]:
    """The package's span attributes of one step (ids, never arguments or outputs)."""
    return {
        "airflow_claude.plan.id": identity.plan_id,
        "airflow_claude.plan.hash": identity.plan_hash,
        "airflow_claude.step.id": identity.step_id,
        "airflow_claude.tool.name": identity.tool,
        "airflow_claude.tool.version": identity.tool_version,
        "airflow_claude.catalog.fingerprint": identity.catalog_fingerprint,
        "airflow_claude.try_number": try_number,
    }


def _run_step(
    tool: Tool,
    raw_args: dict[str, Any],
    identity: StepIdentity,
    context: Any,
    fetch_output: OutputFetcher,
    log: Any,
    scope: RunScope | None,
    span: Span,
) -> Any:
    ti = context["ti"]
    dag_id, run_id, try_number, step_id = ti.dag_id, ti.run_id, ti.try_number, identity.step_id
    base = {"dag_id": dag_id, "run_id": run_id, "plan_id": identity.plan_id, "step_id": step_id}
    try:
        scope = scope or RunScope.of(context)
        args = resolve_with(raw_args, fetch_output, scope)
        run_refs = redact_value(run_refs_used(raw_args, scope))
        check_schema(tool.input_validator, args, f"step '{step_id}': tool '{tool.name}' arguments")
    except StepError as exc:
        emit(log, "step.failed", **base, tool=tool.name, error=str(exc), retryable=False, try_number=try_number)
        raise AirflowFailException(str(exc)) from exc
    key = idempotency_key(dag_id, run_id, step_id, args)
    stamp = provenance_record(
        identity,
        dag_id=dag_id,
        run_id=run_id,
        try_number=try_number,
        key=key,
        args_fingerprint=sha256_of(args),
        run_values=run_refs,
    )
    ledger = StepLedger(context.get("task_state_store"), log, first_try=try_number <= 1)
    done, recorded = ledger.recorded(key)
    tracing.set_attributes(span, {"airflow_claude.idempotency_key": key, "airflow_claude.step.replayed": done})
    if done:  # an earlier try finished the tool call: never perform its effect twice
        emit(log, "step.replayed", **base, tool=tool.name, try_number=try_number, idempotency_key=key)
        ti.xcom_push(key=PROVENANCE_XCOM_KEY, value=stamp)
        return recorded
    earlier_starts = ledger.started_before(key)
    emit(
        log,
        "step.started",
        **base,
        tool=tool.name,
        tool_version=tool.version,
        try_number=try_number,
        idempotency_key=key,
        earlier_starts=earlier_starts,
    )
    breaker = CircuitBreaker(tool.name, tool.circuit, log) if tool.circuit else None
    if breaker is not None:
        try:
            breaker.check()
        except CircuitOpen as exc:
            emit(log, "step.failed", **base, tool=tool.name, error=str(exc), retryable=False, try_number=try_number)
            raise AirflowFailException(str(exc)) from exc
    ledger.mark_started(key, try_number, earlier_starts)
    started = time.monotonic()
    try:
        with tracing.span(f"execute_tool {tool.name}", tool_attributes(tool, key)):
            output = jsonable(_call(tool, args, identity, key, context, log))
    except Exception as exc:
        mask_exception(exc)
        if breaker is not None and breaker.record_failure():
            emit(log, "circuit.opened", **base, tool=tool.name, cool_down_s=tool.circuit.cool_down.total_seconds())  # type: ignore[union-attr]
        emit(
            log,
            "step.failed",
            **base,
            tool=tool.name,
            error=f"{type(exc).__name__}: {exc}",
            retryable=True,
            try_number=try_number,
            duration_s=round(time.monotonic() - started, 6),
        )
        raise
    try:
        check_schema(tool.output_validator, output, f"step '{step_id}': tool '{tool.name}' output")
    except StepError as exc:
        emit(log, "step.failed", **base, tool=tool.name, error=str(exc), retryable=False, try_number=try_number)
        raise AirflowFailException(str(exc)) from exc
    output = redact_value(output)
    ledger.record_result(key, output, try_number)
    if breaker is not None:
        breaker.record_success()
    ti.xcom_push(key=PROVENANCE_XCOM_KEY, value=stamp)
    emit(
        log,
        "step.finished",
        **base,
        tool=tool.name,
        try_number=try_number,
        duration_s=round(time.monotonic() - started, 6),
        idempotency_key=key,
    )
    return output


def mask_exception(exc: BaseException) -> None:
    """Mask secrets in a tool's exception in place, before Airflow logs it and records it on its task span.

    The exception itself propagates (Airflow's retry policy classifies it by type).
    """
    masked = redact_value(list(exc.args))
    if masked != list(exc.args):
        exc.args = tuple(masked)


def tool_attributes(tool: Tool, key: str) -> dict[str, Any]:
    """GenAI ``execute_tool`` attributes; the idempotency key is the call's id."""
    return {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": tool.name,
        "gen_ai.tool.type": "function",
        "gen_ai.tool.call.id": key,
        "airflow_claude.tool.kind": tool.kind,
        "airflow_claude.tool.version": tool.version,
    }


def _call(tool: Tool, args: dict[str, Any], identity: StepIdentity, key: str, context: Any, log: Any) -> Any:
    ti = context["ti"]
    if isinstance(tool, PythonTool):
        tool_context = ToolContext(
            idempotency_key=key,
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            step_id=identity.step_id,
            plan_id=identity.plan_id,
            plan_hash=identity.plan_hash,
            try_number=ti.try_number,
            log=masked_logger(log),
            airflow_context=context,
        )
        return tool.call(args, tool_context)
    if isinstance(tool, OperatorTool) and tool.operator_class is not None:
        # A plan made at run time: the operator is built here from resolved, plain values and is
        # never rendered, so plan data cannot reach Jinja.
        operator = tool.operator_class(task_id=f"{identity.step_id}__tool", **dict(tool.fixed), **args)
        return operator.execute(context)
    raise StepError(f"tool '{tool.name}' of kind {tool.kind!r} cannot run here")


def check_schema(validator: Any, value: Any, what: str) -> None:
    """Raise :class:`StepError` listing (up to ten) schema violations of ``value``."""
    if validator is None:
        return
    errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        detail = "; ".join(f"{'.'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in errors[:10])
        raise StepError(f"{what} break its schema: {detail}")


def jsonable(value: Any) -> Any:
    """Tools may return pydantic models; XCom and references want plain JSON data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value
