"""``CLAUDE_RETRY_POLICY``: a model-calling task retries or fails by the ``retryable`` of the error it raised."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.definitions.retry_policy import RetryAction

from airflow_claude.planner import CLAUDE_RETRY_POLICY
from airflow_claude.planner.errors import (
    BudgetExhausted,
    ClaudeRequestRejected,
    ClaudeUnavailable,
    ContextBudgetExceeded,
    NoPlanInAnswer,
    PlanRefused,
    PlanRepairExhausted,
    PlanTruncated,
    SpendLimitReached,
)
from airflow_claude.planner.retry import MAX_SERVER_WAIT


def context(retry_delay: timedelta = timedelta(seconds=20)) -> dict[str, Any]:
    """The one part of a task context the policy reads: the task's own retry delay."""
    return {"ti": SimpleNamespace(task=SimpleNamespace(retry_delay=retry_delay))}


@pytest.mark.parametrize(
    "error",
    [
        SpendLimitReached("spend limit"),
        ClaudeRequestRejected("401"),
        PlanRefused("no"),
        PlanTruncated("cut"),
        NoPlanInAnswer("text"),
        PlanRepairExhausted(3, []),
        BudgetExhausted("over"),
        ContextBudgetExceeded(70_000, 60_000),
    ],
    ids=lambda e: type(e).__name__,
)
def test_terminal_errors_fail_at_once_whatever_retries_are_left(error: Exception) -> None:
    decision = CLAUDE_RETRY_POLICY.evaluate(error, try_number=1, max_tries=7, context=context())
    assert not error.retryable  # type: ignore[attr-defined]
    assert decision.action is RetryAction.FAIL and type(error).__name__ in (decision.reason or "")


def test_an_unavailable_claude_is_retried_on_the_tasks_own_schedule() -> None:
    decision = CLAUDE_RETRY_POLICY.evaluate(ClaudeUnavailable("529"), try_number=1, max_tries=7, context=context())
    assert decision.action is RetryAction.RETRY and decision.retry_delay is None
    short = ClaudeUnavailable("429", retry_after=5)  # shorter than the task's delay: its backoff applies
    assert CLAUDE_RETRY_POLICY.evaluate(short, 2, 7, context()).retry_delay is None


def test_a_long_retry_after_becomes_the_retry_delay_capped_at_an_hour() -> None:
    asked = ClaudeUnavailable("429", retry_after=600)
    assert CLAUDE_RETRY_POLICY.evaluate(asked, 1, 7, context()).retry_delay == timedelta(seconds=600)
    forever = ClaudeUnavailable("429", retry_after=50 * 86400)
    assert CLAUDE_RETRY_POLICY.evaluate(forever, 1, 7, None).retry_delay == MAX_SERVER_WAIT


def test_other_exceptions_keep_the_tasks_standard_retries() -> None:
    assert CLAUDE_RETRY_POLICY.evaluate(ValueError("bug"), 1, 3, context()).action is RetryAction.DEFAULT
    assert CLAUDE_RETRY_POLICY.serialize() == {"policy": "airflow_claude.ClaudeRetryPolicy"}
