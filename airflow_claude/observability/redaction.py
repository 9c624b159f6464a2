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
