"""Mask secrets structurally, before anything is JSON-encoded, logged, pushed to XCom or prompted.

Escaping changes a secret's bytes, so masking encoded text misses it; we walk the value
instead, with Airflow's own masker (which knows every connection password and sensitive
variable the task has touched).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.log import mask_secret, redact


def redact_value(value: Any, _name: str | None = None) -> Any:
    """Return ``value`` with every registered secret replaced by ``***``, at any depth.

    Airflow's own ``redact`` stops at a fixed depth; plans and model answers nest deeper, so the
    walk is ours and Airflow's masker handles each leaf (and values under sensitive key names).
    """
    if isinstance(value, dict):
        return {k: redact_value(v, k if isinstance(k, str) else None) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v, _name) for v in value]
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return redact(value, _name) if isinstance(value, str) or _name else value
    return value


def register_secret(secret: str) -> None:
    """Tell the masker about a secret that did not come from an Airflow connection or variable.

    No name is passed on purpose: with a name, Airflow masks the value only when the name looks
    sensitive, which silently drops secrets registered under plain names.
    """
    mask_secret(secret)


_LOGGING_KEYS = ("exc_info", "stack_info", "stacklevel", "extra")


def _mask_event(logger: Any, method_name: str, event_dict: Any) -> Any:
    """structlog processor: every registered secret out of the event, its arguments and its key-values."""
    masked = {k: v if k in _LOGGING_KEYS else redact_value(v, k) for k, v in event_dict.items()}
    if isinstance(event_dict.get("positional_args"), tuple):
        masked["positional_args"] = tuple(redact_value(a) for a in event_dict["positional_args"])
    return masked


def masked_logger(log: Any) -> Any:
    """``log`` (a structlog logger) masking at the call, in this process: what tools get as ``context.log``.

    Masking at the call matters: Airflow 3.3's LocalExecutor also echoes every task log line into
    the scheduler's own stdout, past the masking that the task's log file gets. The masking runs as
    the first processor, so the line keeps the tool's own call site (``loc``). A logger that is not
    structlog's is returned as is.
    """
    bind = getattr(log, "bind", None)
    bound = bind() if callable(bind) else None
    processors = getattr(bound, "_processors", None)
    if bound is None or not isinstance(processors, list | tuple):
        return log
    import structlog

    return structlog.wrap_logger(
        bound._logger,
        processors=[_mask_event, *processors],
        wrapper_class=type(bound),
        **dict(bound._context),
    )
