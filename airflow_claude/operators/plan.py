"""``ClaudePlanOperator``: plan a goal with Claude inside a DAG run and push the validated plan to XCom."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule
from airflow.sdk.exceptions import AirflowFailException

from airflow_claude.catalog.catalog import Catalog
from airflow_claude.observability.records import emit
from airflow_claude.plan.limits import DEFAULT_LIMITS, PlanLimits
from airflow_claude.plan.run_fields import run_values_from_context
from airflow_claude.planner.cache import PlanCache
from airflow_claude.planner.calls import CallPolicy
from airflow_claude.planner.errors import ClaudeUnavailable, PlanningError
from airflow_claude.planner.planner import ClaudePlanner
from airflow_claude.planner.pricing import PriceTable, total_usage

USAGE_XCOM_KEY = "usage"

#: Terminal planning errors fail at once; an unavailable Claude is retried by Airflow after a pause
#: (the worker slot is given back in between, instead of sleeping on a long retry-after).
CLAUDE_RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception=ClaudeUnavailable,
            action=RetryAction.RETRY,
            retry_delay=timedelta(seconds=60),
            reason="Claude is rate limited or unavailable",
        ),
        RetryRule(exception=PlanningError, action=RetryAction.FAIL, reason="planning failed for good"),
    ]
)


class ClaudePlanOperator(BaseOperator):
    """Ask Claude for a plan that achieves ``goal`` with the ``catalog``'s tools.

    Pushes the validated plan (with provenance) as ``return_value`` and the usage and cost as
    XCom ``usage``. Only ``goal`` and ``plan_id`` are template fields, for the DAG author's own
    templates; the model's answer is never rendered. Uses the ``anthropic`` connection
    (``AnthropicHook``: key in password, base URL in host, default model in extra).
    """

    template_fields: Sequence[str] = ("goal", "plan_id")
    ui_color = "#f3e1d2"

    def __init__(
        self,
        *,
        goal: str,
        catalog: Catalog,
        conn_id: str = "anthropic_default",
        model: str | None = None,
        plan_id: str | None = None,
        limits: PlanLimits = DEFAULT_LIMITS,
        max_repairs: int = 2,
        max_tokens: int = 8192,
        context_budget_tokens: int | None = 60_000,
        call_policy: CallPolicy | None = None,
        prices: PriceTable | None = None,
        cache: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retry_policy", CLAUDE_RETRY_POLICY)
        kwargs.setdefault("retries", 3)
        super().__init__(**kwargs)
        self.goal = goal
        self.catalog = catalog
        self.conn_id = conn_id
        self.model = model
        self.plan_id = plan_id
        self.limits = limits
        self.max_repairs = max_repairs
        self.max_tokens = max_tokens
        self.context_budget_tokens = context_budget_tokens
        self.call_policy = call_policy
        self.prices = prices
        self.cache = cache

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

        if not isinstance(self.goal, str) or not self.goal.strip():
            raise AirflowFailException("goal must be a non-empty string")
        hook = AnthropicHook(conn_id=self.conn_id)
        planner = ClaudePlanner(
            hook.get_conn(),
            self.catalog,
            model=self.model or hook.default_model,
            limits=self.limits,
            max_repairs=self.max_repairs,
            max_tokens=self.max_tokens,
            context_budget_tokens=self.context_budget_tokens,
            call_policy=self.call_policy,
            prices=self.prices,
            cache=PlanCache(self.cache) if self.cache else None,
            logger=self.log,
        )
        ti = context["ti"]
        try:
            result = planner.plan(self.goal, plan_id=self.plan_id or None, run=run_values_from_context(context))
        except PlanningError as exc:
            self._push_usage(ti, exc.calls, error=f"{type(exc).__name__}: {exc}")
            emit(
                self.log,
                "plan.failed",
                dag_id=ti.dag_id,
                run_id=ti.run_id,
                error=type(exc).__name__,
                retryable=exc.retryable,
            )
            raise
        self._push_usage(ti, result.calls, cached=result.cached)
        return result.plan.model_dump(mode="json")

    def _push_usage(self, ti: Any, calls: list[Any], **extra: Any) -> None:
        """Usage is pushed on success and on failure, stamped with the try number."""
        try:
            ti.xcom_push(
                key=USAGE_XCOM_KEY,
                value={
                    **total_usage(calls),
                    "per_call": [c.to_dict() for c in calls],
                    "try_number": ti.try_number,
                    **extra,
                },
            )
        except Exception:  # reporting must never hide the real outcome
            self.log.exception("could not push planning usage to XCom")
