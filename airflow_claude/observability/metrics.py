"""Metrics, derived from the package's records and sent through Airflow's own metrics path.

Every record :func:`~airflow_claude.observability.records.emit` writes passes through
:func:`record_metrics`, so a metric can never disagree with the log: the counts are the
records. Airflow's ``Stats`` sends them to statsd or OpenTelemetry, as ``[metrics]`` configures
(``statsd_on`` or ``otel_on``); with neither, nothing is sent. Names get Airflow's prefix
(``airflow.claude.model_calls``, ...). Tags are bounded (tool, purpose, model, status, code:
never a run, step or key) and masked like the record itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from airflow.sdk.observability import stats

__all__ = ["METRICS", "record_metrics"]

#: Every metric name this module sends (after Airflow's prefix), with what it counts.
METRICS = {
    "claude.model_calls": "model calls, by purpose (plan, repair, review) and model",
    "claude.tokens": "tokens, by kind (input, output, cache_read, cache_creation), purpose and model",
    "claude.cost_microusd": "cost of the model calls in millionths of a dollar, by purpose and model",
    "claude.model_call.duration": "model-call latency in milliseconds, by purpose and model",
    "claude.plan_repairs": "repair calls: a plan Claude wrote was invalid and it was asked again",
    "claude.plan_validation_failures": "invalid plans from Claude, once per error code found",
    "claude.plan_cache_hits": "plans served from the plan cache with no model call",
    "claude.planning_failures": "planning calls that ended in an error, by error class and retryable",
    "claude.steps": "step outcomes, by tool, status (success, failed, replayed) and retryable (failures)",
    "claude.ledger_replays": "step tries that found their effect in the ledger and did not call the tool",
    "claude.compensations": "finished steps undone by the saga, by undo tool",
    "claude.circuit_openings": "tools cut off by their circuit breaker",
}

_TOKEN_KINDS = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cache_read": "cache_read_input_tokens",
    "cache_creation": "cache_creation_input_tokens",
}


def record_metrics(event: str, record: Mapping[str, Any]) -> None:
    """Send the metrics that the (already masked) record ``event`` stands for; never raises."""
    try:
        _send(event, record)
    except Exception:  # a metrics backend must never fail the step that reported
        pass


def _send(event: str, record: Mapping[str, Any]) -> None:
    if event == "model.call":
        tags = {"purpose": str(record.get("purpose")), "model": str(record.get("model"))}
        stats.incr("claude.model_calls", tags=tags)
        for kind, field in _TOKEN_KINDS.items():
            tokens = int(record.get(field) or 0)
            if tokens:
                stats.incr("claude.tokens", tokens, tags={**tags, "kind": kind})
        micro = _micro_usd(record.get("cost_usd"))
        if micro:
            stats.incr("claude.cost_microusd", micro, tags=tags)
        if record.get("duration_s") is not None:
            stats.timing("claude.model_call.duration", float(record["duration_s"]) * 1000.0, tags=tags)
        if record.get("purpose") == "repair":
            stats.incr("claude.plan_repairs", tags={"model": tags["model"]})
    elif event == "plan.invalid":
        for code in record.get("codes") or ["unknown"]:
            stats.incr("claude.plan_validation_failures", tags={"code": str(code)})
    elif event == "plan.cache_hit":
        stats.incr("claude.plan_cache_hits")
    elif event == "plan.failed":
        tags = {"error": str(record.get("error")), "retryable": str(bool(record.get("retryable"))).lower()}
        stats.incr("claude.planning_failures", tags=tags)
    elif event in ("step.finished", "step.failed", "step.replayed"):
        status = {"step.finished": "success", "step.failed": "failed", "step.replayed": "replayed"}[event]
        tags = {"tool": str(record.get("tool", "unknown")), "status": status}
        if event == "step.failed":
            tags["retryable"] = str(bool(record.get("retryable"))).lower()
        stats.incr("claude.steps", tags=tags)
        if event == "step.replayed":
            stats.incr("claude.ledger_replays", tags={"tool": str(record.get("tool"))})
    elif event == "step.compensated":
        stats.incr("claude.compensations", tags={"tool": str(record.get("tool"))})
    elif event == "circuit.opened":
        stats.incr("claude.circuit_openings", tags={"tool": str(record.get("tool"))})


def _micro_usd(cost: Any) -> int:
    try:
        return int((Decimal(str(cost)) * 1_000_000).to_integral_value()) if cost is not None else 0
    except (InvalidOperation, ValueError):
        return 0
