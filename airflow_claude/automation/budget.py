"""One budget for the whole DAG run: every model call of every task and every try counts.

Each task that calls Claude keeps what it spent in the task state store (which survives
retries, unlike XCom) and pushes the total to XCom ``usage`` on every exit. Before a call, the
spend of the run so far plus a pessimistic estimate of the call (counted input tokens, and
``max_tokens`` of output) must fit; otherwise the call is not made.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from airflow_claude.automation.contracts import USAGE_KEY, Usage, pull
from airflow_claude.planner.errors import BudgetExhausted
from airflow_claude.planner.pricing import CallUsage, PriceTable

_STORE_KEY = "airflow_claude.usage"


class RunBudget:
    """Tracks the run's spend for the task at hand and refuses calls that would exceed the limit."""

    def __init__(self, limit_usd: Decimal, context: Any, model_tasks: Iterable[str], prices: PriceTable, model: str):
        self.limit = Decimal(limit_usd)
        self.context = context
        self.ti = context["ti"]
        self.store = context.get("task_state_store")
        self.prices = prices
        self.model = model
        self.other_tasks = [t for t in model_tasks if t != self.ti.task_id]
        self.mine: list[dict[str, Any]] = list(self._stored())

    def _stored(self) -> list[dict[str, Any]]:
        if self.store is None:
            return []
        value = self.store.get(_STORE_KEY, [])
        return value if isinstance(value, list) else []

    def spent_elsewhere(self) -> Decimal:
        total = Decimal(0)
        for task_id in self.other_tasks:
            usage = pull(self.ti, Usage, task_id, key=USAGE_KEY)
            if usage is not None:
                total += Decimal(usage.cost_usd)
        return total

    def spent(self) -> Decimal:
        return self.spent_elsewhere() + sum((Decimal(c["cost_usd"]) for c in self.mine), Decimal(0))

    def guard(self, purpose: str, input_tokens: int, max_tokens: int) -> None:
        """Called before each model call: refuse the call if it could take the run over budget."""
        price = self.prices.price(self.model)
        estimate = (price.input * input_tokens + price.output * max_tokens) / Decimal(1_000_000)
        spent = self.spent()
        if spent + estimate > self.limit:
            raise BudgetExhausted(
                f"the {purpose} call was not made: the run has spent ${spent:.6f} of its ${self.limit} budget "
                f"and this call could cost up to ${estimate:.6f}"
            )

    def record(self, calls: Iterable[CallUsage]) -> None:
        """Remember this try's calls beside those of earlier tries (in the task state store)."""
        self.mine.extend(c.to_dict() for c in calls)
        if self.store is not None and self.mine:
            try:
                self.store.set(_STORE_KEY, self.mine)
            except Exception:  # a failed bookkeeping write must not fail the task
                self.ti.task.log.exception("could not persist usage in the task state store")

    def push(self, error: str | None = None) -> Usage:
        """Push the task's total usage (all tries) to XCom; called on success and failure alike."""
        usage = Usage(
            calls=len(self.mine),
            input_tokens=sum(c["input_tokens"] for c in self.mine),
            output_tokens=sum(c["output_tokens"] for c in self.mine),
            cache_creation_input_tokens=sum(c["cache_creation_input_tokens"] for c in self.mine),
            cache_read_input_tokens=sum(c["cache_read_input_tokens"] for c in self.mine),
            cost_usd=str(sum((Decimal(c["cost_usd"]) for c in self.mine), Decimal(0))),
            per_call=self.mine,
            try_number=self.ti.try_number,
            error=error,
        )
        try:
            self.ti.xcom_push(key=USAGE_KEY, value=usage.dump())
        except Exception:  # reporting must never hide the real outcome
            self.ti.task.log.exception("could not push usage to XCom")
        return usage
