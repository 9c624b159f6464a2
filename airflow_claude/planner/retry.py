"""``CLAUDE_RETRY_POLICY``: the one Airflow retry policy of every task that calls Claude.

A model-calling task lets the gateway's or planner's error propagate; this policy reads its
``retryable`` and decides: a retryable error (Claude rate limited, overloaded or unreachable)
gives the worker back and Airflow retries the task with its own ``retries`` and delay (or after
the ``retry-after`` the server asked for); a terminal one (spend limit, refusal, a rejected
request, a plan still invalid after its repairs, an exhausted budget) fails the task at once,
whatever retries are left. Other exceptions keep the task's standard retry behaviour.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy

from airflow_claude.planner.errors import PlanningError

#: The longest ``retry-after`` honoured as the retry delay; longer asks wait this long, then try again.
MAX_SERVER_WAIT = timedelta(hours=1)


class ClaudeRetryPolicy(RetryPolicy):
    """Retry or fail a model-calling task by the ``retryable`` of the :class:`PlanningError` it raised."""

    def evaluate(self, exception: BaseException, try_number: int, max_tries: int, context: Any = None) -> RetryDecision:
        if not isinstance(exception, PlanningError):
            return RetryDecision.default()
        name = type(exception).__name__
        if not exception.retryable:
            return RetryDecision.fail(f"{name}: retrying cannot help")
        return RetryDecision.retry(
            _server_wait(exception, context), reason=f"{name}: Claude is rate limited or unavailable; retried later"
        )

    def serialize(self) -> dict[str, Any]:
        return {"policy": "airflow_claude.ClaudeRetryPolicy"}


def _server_wait(exception: BaseException, context: Any) -> timedelta | None:
    """The server's ``retry-after`` when it is longer than the task's own retry delay; else None (the
    task's delay and backoff apply, so a storm of short asks still backs off)."""
    retry_after = getattr(exception, "retry_after", None)
    if not retry_after:
        return None
    wait = min(timedelta(seconds=retry_after), MAX_SERVER_WAIT)
    task = getattr(context.get("ti"), "task", None) if context else None
    own = getattr(task, "retry_delay", None)
    return wait if not isinstance(own, timedelta) or wait > own else None


CLAUDE_RETRY_POLICY = ClaudeRetryPolicy()
