"""Shared test helpers: a small, realistic catalog ("shop") and builders for plan dicts.

The catalog has three python tools (one returning a pydantic model with a nested model, one
returning a TypedDict, one taking a ``ToolContext`` and returning nothing) and one operator
tool wrapping ``SQLExecuteQueryOperator`` with ``conn_id`` fixed and ``sql`` plan-filled.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from pydantic import BaseModel
from typing_extensions import TypedDict

from airflow_claude.catalog import Catalog, ToolContext, operator_tool, python_tool


class OrderRow(BaseModel):
    id: int
    amount: float
    customer: str


class Orders(BaseModel):
    rows: list[OrderRow]
    count: int
    source: str


class Summary(TypedDict):
    total: float
    currency: str
    top_customers: list[str]


@python_tool(max_retries=2, max_timeout_seconds=600)
def load_orders(source: str, limit: int = 100) -> Orders:
    """Load recent orders from a named source."""
    raise NotImplementedError


@python_tool
def summarize(amounts: list[float], currency: str = "EUR") -> Summary:
    """Sum order amounts and name the top customers."""
    raise NotImplementedError


@python_tool(side_effects="mutating", max_retries=5)
def notify(channel: str, message: str, ctx: ToolContext) -> None:
    """Post a message to a chat channel."""


run_sql = operator_tool(
    SQLExecuteQueryOperator,
    name="run_sql",
    description="Run one SQL statement on the warehouse.",
    params={"sql": {"type": "string"}, "split_statements": {"type": "boolean"}},
    required=("sql",),
    fixed={"conn_id": "warehouse"},
    max_timeout_seconds=3600,
)

CATALOG = Catalog([load_orders, summarize, notify, run_sql], name="shop")

Step = dict[str, Any]
PlanDict = dict[str, Any]


def build_step(
    id: str,
    tool: str = "load_orders",
    args: dict[str, Any] | None = None,
    depends_on: list[str] | tuple[str, ...] = (),
    **extra: Any,
) -> Step:
    """A step dict; ``load_orders`` gets valid default arguments."""
    if args is None:
        args = {"source": "shop_db"} if tool == "load_orders" else {}
    return {"id": id, "tool": tool, "args": args, "depends_on": list(depends_on), **extra}


def build_plan(*steps: Step, **fields: Any) -> PlanDict:
    """A plan dict with the given steps (one valid step when none is given); ``fields`` override."""
    data: PlanDict = {
        "schema_version": "1",
        "id": "daily_orders",
        "goal": "Summarise yesterday's orders and tell the team.",
        "steps": list(steps) if steps else [build_step("load")],
        "provenance": {"created_by": "human:tester"},
    }
    data.update(fields)
    return data


def diamond() -> PlanDict:
    """load -> (summary, sql) -> announce: a valid plan with references."""
    return build_plan(
        build_step("load"),
        build_step("summary", "summarize", {"amounts": [{"$ref": "steps.load.output.rows.0.amount"}]}, ["load"]),
        build_step("sql", "run_sql", {"sql": {"$ref": "steps.load.output.source"}}, ["load"]),
        build_step(
            "announce",
            "notify",
            {"channel": "#orders", "message": {"$ref": "steps.summary.output.currency"}},
            ["summary", "sql"],
        ),
        id="diamond",
    )
