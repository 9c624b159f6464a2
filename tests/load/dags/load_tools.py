"""The load suite's catalog: read, check, aggregate (pure), and four mutating tools writing to the effects ledger.

Rows are plain dicts so hand-written ``PythonOperator`` tasks (the overhead benchmark's baseline)
can call the same functions with what it pulls from XCom. Every tool is quick: the load measures
Airflow's and the package's machinery, not the tools.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from airflow_claude.catalog import Catalog, ToolContext, python_tool
from tests.load import effects


class Orders(BaseModel):
    rows: list[dict[str, Any]]
    count: int


class Quality(BaseModel):
    passed: bool
    checked_rows: int


class Revenue(BaseModel):
    total: float
    rows: int


class Effect(BaseModel):
    effect_key: str
    written_on_try: int


def _effect(context: ToolContext, tool: str, payload: dict[str, Any]) -> Effect:
    key = effects.write(
        context.idempotency_key, context.dag_id, context.run_id, context.step_id, tool, context.try_number, payload
    )
    return Effect(effect_key=key, written_on_try=context.try_number)


@python_tool(max_retries=3, default_retries=2, max_timeout_seconds=300, circuit=None)
def query_orders(region: str, month: str) -> Orders:
    """Read one region's paid orders of a month (deterministic rows)."""
    seed = sum(map(ord, region + month))
    rows = [{"id": i, "region": region, "amount": float((seed + 7 * i) % 97 + 3)} for i in range(100)]
    return Orders(rows=rows, count=len(rows))


@python_tool(max_retries=3, default_retries=2, max_timeout_seconds=300, circuit=None)
def check_quality(rows: list[dict[str, Any]], min_rows: int = 1) -> Quality:
    """Check the row count and that every amount is positive."""
    ok = len(rows) >= min_rows and all(float(r["amount"]) > 0 for r in rows)
    return Quality(passed=ok, checked_rows=len(rows))


@python_tool(max_retries=3, default_retries=2, max_timeout_seconds=300, circuit=None)
def aggregate_revenue(rows: list[dict[str, Any]]) -> Revenue:
    """Sum the revenue of the rows."""
    return Revenue(total=round(sum(float(r["amount"]) for r in rows), 2), rows=len(rows))


@python_tool(max_retries=3, default_retries=2, max_timeout_seconds=300, circuit=None)
def combine_totals(totals: list[float]) -> Revenue:
    """Add up regional totals."""
    return Revenue(total=round(sum(totals), 2), rows=len(totals))


@python_tool(side_effects="mutating", max_retries=3, default_retries=2, max_timeout_seconds=300, circuit=None)
def write_report(title: str, total: float, passed: bool, context: ToolContext) -> Effect:
    """Store a revenue report (one effect per idempotency key)."""
    return _effect(context, "write_report", {"title": title, "total": total, "passed": passed})


@python_tool(side_effects="mutating", max_retries=3, default_retries=2, max_timeout_seconds=300, circuit=None)
def notify(channel: str, message: str, report_key: str, context: ToolContext) -> Effect:
    """Post a message about a report (one effect per idempotency key)."""
    return _effect(context, "notify", {"channel": channel, "message": message, "report": report_key})


@python_tool(side_effects="mutating", max_retries=3, default_retries=2, max_timeout_seconds=300, circuit=None)
def publish_dashboard(report_key: str, context: ToolContext) -> Effect:
    """Publish the dashboard of a report (one effect per idempotency key)."""
    return _effect(context, "publish_dashboard", {"report": report_key})


catalog = Catalog(
    [query_orders, check_quality, aggregate_revenue, combine_totals, write_report, notify, publish_dashboard],
    name="load",
)
