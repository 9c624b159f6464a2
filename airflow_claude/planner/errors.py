"""Why planning failed, split by what to do about it: retry later, or stop and tell a person."""

from __future__ import annotations

from typing import Any

from airflow_claude.errors import AirflowClaudeError, PlanIssue


class PlanningError(RuntimeError, AirflowClaudeError):
    """Base class. ``retryable`` says whether trying again later can help; a model-calling task lets
    the error propagate and ``planner.retry.CLAUDE_RETRY_POLICY`` retries or fails it by this flag."""

    retryable = False
    calls: list[Any] = []


class ClaudeUnavailable(PlanningError):
    """Rate limited, overloaded, a server error or a timeout: Airflow's retries take over."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SpendLimitReached(PlanningError):
    """The organisation's spend limit is reached: retrying only burns the queue. Terminal."""


class ClaudeRequestRejected(PlanningError):
    """The API refused the request itself (authentication, permission, a bad request). Terminal."""


class ContextBudgetExceeded(PlanningError):
    """The prompt would exceed the configured context budget; nothing was sent to the model."""

    def __init__(self, tokens: int, budget: int) -> None:
        super().__init__(f"the planning prompt needs {tokens} input tokens, over the budget of {budget}")
        self.tokens = tokens
        self.budget = budget


class PlanRefused(PlanningError):
    """Claude declined to plan this goal (``stop_reason: refusal``)."""


class PlanTruncated(PlanningError):
    """The answer hit ``max_tokens`` before the plan was complete."""


class NoPlanInAnswer(PlanningError):
    """The answer carried no ``submit_plan`` call (plain text, or another tool)."""


class PlanRepairExhausted(PlanningError):
    """Every attempt produced an invalid plan; ``issues`` are the last attempt's problems."""

    def __init__(self, attempts: int, issues: list[PlanIssue]) -> None:
        lines = "\n".join(f"  - {issue}" for issue in issues)
        super().__init__(f"no valid plan after {attempts} attempts; last problems:\n{lines}")
        self.attempts = attempts
        self.issues = issues


class BudgetExhausted(PlanningError):
    """A model call would exceed the run's budget; it was not made."""
