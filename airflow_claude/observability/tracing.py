"""OpenTelemetry spans for model calls, plans, validations, steps, tool calls and compensations.

The spans go to whatever tracer provider the process has: in a task, the one Airflow sets up
when ``[traces] otel_on`` is true, so they nest under Airflow's own ``worker.<task>`` span and
share its DAG run's trace. With tracing off the provider is a no-op and no attribute is built.

Names and attributes follow the OpenTelemetry GenAI semantic conventions (``chat <model>``,
``execute_tool <tool>``, ``gen_ai.*``); the package's own attributes sit under ``airflow_claude.``.
Every attribute is masked, and a span carries ids, counts and costs, never arguments or outputs.
Prompt and completion text is added only when the deployment opts in with
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` (and is masked too).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from airflow_claude.observability.redaction import redact_value

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "PROVIDER",
    "capture_content",
    "model_call_span",
    "record_model_response",
    "record_validation",
    "set_attributes",
    "set_error",
    "span",
    "validation_span",
]

#: The GenAI conventions' opt-in for message content; anything but a true value keeps it in.
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
#: ``gen_ai.provider.name`` of every model call.
PROVIDER = "anthropic"
_MAX_ERROR_TEXT = 500

_tracer = trace.get_tracer("airflow_claude")


def capture_content() -> bool:
    """Whether prompts and completions may leave the process (off unless the deployment opts in)."""
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in ("1", "true", "yes")


def _attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    """Masked attribute values of the types OpenTelemetry accepts; ``None`` values are left out.

    Values are masked without their keys: the keys are the package's own, never sensitive
    names, and masking by name costs several times more per attribute.
    """
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            out[key] = [v if isinstance(v, int | float | bool) else str(redact_value(v)) for v in value]
        elif isinstance(value, int | float | bool):
            out[key] = value
        else:
            out[key] = redact_value(str(value))
    return out


@contextmanager
def span(
    name: str, attributes: Mapping[str, Any] | None = None, *, kind: SpanKind = SpanKind.INTERNAL
) -> Iterator[Span]:
    """A span under the current one; an exception marks it failed (type and masked message) and propagates."""
    with _tracer.start_as_current_span(
        name, kind=kind, record_exception=False, set_status_on_exception=False
    ) as current:
        if attributes and current.is_recording():
            current.set_attributes(_attributes(attributes))
        try:
            yield current
        except BaseException as exc:
            if current.is_recording():
                set_error(current, exc)
            raise


def set_error(current: Span, exc: BaseException) -> None:
    """Mark ``current`` failed with the error's type and masked, bounded message."""
    text = str(redact_value(f"{type(exc).__name__}: {exc}"))[:_MAX_ERROR_TEXT]
    current.set_attribute("error.type", type(exc).__name__)
    current.set_status(Status(StatusCode.ERROR, description=text))


def set_attributes(current: Span, values: Mapping[str, Any]) -> None:
    """Add masked attributes to ``current`` (nothing is built when it does not record)."""
    if current.is_recording():
        current.set_attributes(_attributes(values))


@contextmanager
def model_call_span(purpose: str, request: Mapping[str, Any], *, plan_id: str | None = None) -> Iterator[Span]:
    """The ``chat <model>`` span of one Messages API call (``purpose``: plan, repair or review)."""
    model = str(request.get("model", ""))
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": PROVIDER,
        "gen_ai.request.model": model,
        "gen_ai.request.max_tokens": request.get("max_tokens"),
        "airflow_claude.purpose": purpose,
        "airflow_claude.plan.id": plan_id,
    }
    with span(f"chat {model}", attributes, kind=SpanKind.CLIENT) as current:
        if capture_content() and current.is_recording():
            messages = [{"role": "system", "content": request["system"]}] if request.get("system") else []
            messages += list(request.get("messages", []))
            current.set_attribute("gen_ai.input.messages", _json(messages))
        yield current


def record_model_response(current: Span, message: Any, usage: Any) -> None:
    """Response id, finish reason, token counts and cost of a finished call (``usage``: a ``CallUsage``)."""
    if not current.is_recording():
        return
    set_attributes(
        current,
        {
            "gen_ai.response.id": getattr(message, "id", None),
            "gen_ai.response.model": getattr(message, "model", None),
            "gen_ai.response.finish_reasons": [str(message.stop_reason)] if message.stop_reason else None,
            "gen_ai.usage.input_tokens": usage.input_tokens,
            "gen_ai.usage.output_tokens": usage.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": usage.cache_read_input_tokens,
            "gen_ai.usage.cache_creation.input_tokens": usage.cache_creation_input_tokens,
            "airflow_claude.cost_usd": float(usage.cost_usd) if usage.cost_usd is not None else None,
            "airflow_claude.request_id": usage.request_id,
        },
    )
    if capture_content():
        content = [block.model_dump(mode="json", exclude_none=True) for block in message.content]
        current.set_attribute("gen_ai.output.messages", _json([{"role": "assistant", "content": content}]))


@contextmanager
def validation_span(plan_id: str | None, **fields: Any) -> Iterator[Span]:
    """The ``validate <plan id>`` span of a plan Claude or a person wrote (the DAG parse path has none)."""
    attributes = {"airflow_claude.plan.id": plan_id, **{f"airflow_claude.{k}": v for k, v in sorted(fields.items())}}
    with span(f"validate {plan_id}", attributes) as current:
        yield current


def record_validation(current: Span, result: Any) -> None:
    """Outcome of a validation (``result``: a ``ValidationResult``): valid or not, the hash, the error codes."""
    set_attributes(
        current,
        {
            "airflow_claude.valid": result.ok,
            "airflow_claude.plan.hash": result.plan.hash if result.plan is not None else None,
            "airflow_claude.issues": len(result.issues),
            "airflow_claude.issue_codes": sorted({str(issue.code) for issue in result.issues}),
        },
    )


def _json(value: Any) -> str:
    """Masked before encoding: escaping changes a secret's bytes, so masking the text could miss it."""
    return json.dumps(redact_value(value), sort_keys=True, default=str)
