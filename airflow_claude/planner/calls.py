"""One model call with bounded, capped retries; the SDK's own retries are switched off.

The anthropic SDK honours ``retry-after`` up to ~50 days and retries spend-limit 429s. Here a
wait is made only when the server asks for at most ``retry_after_cap`` seconds; anything longer
gives the worker back at once (``ClaudeUnavailable`` -> Airflow retries later), and a spend
limit is terminal.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic

from airflow_claude.planner.errors import ClaudeRequestRejected, ClaudeUnavailable, SpendLimitReached


@dataclass(frozen=True)
class CallPolicy:
    """How long and how often one model call may wait in-process before Airflow takes over."""

    attempts: int = 3
    retry_after_cap: float = 30.0
    base_backoff: float = 1.0
    timeout: float = 120.0


def create_message(
    client: Any,
    request: dict[str, Any],
    policy: CallPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """``client.messages.create(**request)`` with the retry rules above; returns the Message."""
    return _with_policy(
        lambda: client.with_options(max_retries=0, timeout=policy.timeout).messages.create(**request), policy, sleep
    )


def _with_policy(call: Callable[[], Any], policy: CallPolicy, sleep: Callable[[float], None]) -> Any:
    """Run one API call with bounded, capped retries; map SDK errors to planning errors."""
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


def count_input_tokens(
    client: Any, request: dict[str, Any], policy: CallPolicy, *, sleep: Callable[[float], None] = time.sleep
) -> int:
    """Input tokens the request would use (free endpoint); asked before a call to enforce budgets.

    Same retry rules and error mapping as :func:`create_message`: an overloaded or rate-limited
    count is ``ClaudeUnavailable``, a spend limit is terminal (never the SDK's raw errors).
    """
    counted = _with_policy(
        lambda: client.with_options(max_retries=0, timeout=policy.timeout).messages.count_tokens(
            model=request["model"], system=request["system"], tools=request["tools"], messages=request["messages"]
        ),
        policy,
        sleep,
    )
    return int(counted.input_tokens)


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
