"""Mask secrets structurally, before anything is JSON-encoded, logged, pushed to XCom or prompted.

Escaping changes a secret's bytes, so masking encoded text misses it; we walk the value
instead, with Airflow's own masker (which knows every connection password and sensitive
variable the task has touched).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.log import mask_secret, redact


def redact_value(value: Any) -> Any:
    """Return ``value`` with every registered secret replaced by ``***`` (dicts, lists, strings)."""
    return redact(value)


def register_secret(secret: str, name: str | None = None) -> None:
    """Tell the masker about a secret that did not come from an Airflow connection or variable."""
    mask_secret(secret, name)
