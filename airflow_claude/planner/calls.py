"""The retry rules of a model call; private to :mod:`airflow_claude.planner.gateway`, their only user.

The anthropic SDK honours ``retry-after`` up to ~50 days and retries spend-limit 429s, so the
gateway switches the SDK's retries off and runs each request through :func:`with_retries`: a
wait is made only when the server asks for at most ``retry_after_cap`` seconds; anything longer
gives the worker back at once (``ClaudeUnavailable`` -> Airflow retries later), and a spend
limit is terminal.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import anthropic

from airflow_claude.planner.errors import ClaudeRequestRejected, ClaudeUnavailable, SpendLimitReached

T = TypeVar("T")


@dataclass(frozen=True)
class CallPolicy:
    """How long and how often one model call may wait in-process before Airflow takes over."""

    attempts: int = 3
    retry_after_cap: float = 30.0
    base_backoff: float = 1.0
    timeout: float = 120.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"CallPolicy.attempts must be at least 1, got {self.attempts}")


def with_retries(call: Callable[[], T], policy: CallPolicy, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run one API request with bounded, capped retries; SDK errors become planning errors."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return call()
        except anthropic.EnforcedSpendLimitReachedError as exc:
            raise SpendLimitReached(f"Claude spend limit reached: {_message(exc)}") from exc
        except (anthropic.RateLimitError, anthropic.InternalServerError, anthropic.APIConnectionError) as exc:
            retry_after = _retry_after(exc)
            if retry_after is not None and retry_after > policy.retry_after_cap:
                raise ClaudeUnavailable(
                    f"Claude asked to wait {retry_after:.0f}s (over the cap of {policy.retry_after_cap:.0f}s): "
                    f"{type(exc).__name__}",
                    retry_after=retry_after,
                ) from exc
            if attempt == policy.attempts:
                raise ClaudeUnavailable(
                    f"Claude unavailable after {attempt} attempts: {type(exc).__name__}: {_message(exc)}",
                    retry_after=retry_after,
                ) from exc
            wait = retry_after if retry_after is not None else policy.base_backoff * 2 ** (attempt - 1)
            sleep(min(wait * (1 + random.random() * 0.1), policy.retry_after_cap))
        except anthropic.APIStatusError as exc:
            raise ClaudeRequestRejected(f"Claude rejected the request ({exc.status_code}): {_message(exc)}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"][:500]
    return str(exc)[:500]
