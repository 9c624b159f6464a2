"""A realistic data-team catalog over an embedded SQLite orders database that this module creates.

Tools: query orders, check data quality, aggregate revenue, write a report file, notify a
channel (an outbox file), and ``run_sql``, an operator-backed tool (``SQLExecuteQueryOperator``
with the connection fixed by the catalog). Data lives under ``AIRFLOW_CLAUDE_DEMO_DIR``
(default: ``$AIRFLOW_HOME/airflow_claude_demo``). Mutating tools use the step's idempotency
key, so a retried step never writes twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from pydantic import BaseModel, Field

from airflow_claude.catalog import Catalog, Compensation, ToolContext, operator_tool, python_tool

ORDERS_CONN_ID = "orders_db"
_REGIONS = ("emea", "amer", "apac")
_PRODUCTS = ("basic", "pro", "enterprise")


def demo_dir() -> Path:
    """Where the demo database, reports and outbox live."""
    default = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "airflow_claude_demo"
    path = Path(os.environ.get("AIRFLOW_CLAUDE_DEMO_DIR", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_path() -> Path:
    return demo_dir() / "orders.db"


def orders_connection_env(path: Path | None = None) -> dict[str, str]:
    """The ``AIRFLOW_CONN_ORDERS_DB`` variable that points the ``run_sql`` tool at the demo database."""
    return {
        f"AIRFLOW_CONN_{ORDERS_CONN_ID.upper()}": json.dumps(
            {"conn_type": "sqlite", "host": str(path or database_path())}
        )
    }


def ensure_database(path: Path | None = None, *, days: int = 60, seed: int = 7) -> Path:
    """Create and seed the orders database once; later calls leave it as it is."""
    path = path or database_path()
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, order_date TEXT NOT NULL,"
            " region TEXT, product TEXT NOT NULL, quantity INTEGER NOT NULL, unit_price REAL NOT NULL,"
            " status TEXT NOT NULL)"
        )
        if db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 0:
            rng = random.Random(seed)
            start = date(2026, 9, 1)
            rows = []
            for i in range(days * 20):
                day = start + timedelta(days=i // 20)
                region = rng.choice(_REGIONS) if rng.random() > 0.01 else None  # a few bad rows, on purpose
                rows.append(
                    (
                        day.isoformat(),
                        region,
                        rng.choice(_PRODUCTS),
                        rng.randint(1, 5),
                        rng.choice((9.0, 29.0, 99.0)),
                        rng.choice(("paid", "paid", "paid", "refunded")),
                    )
                )
            db.executemany(
                "INSERT INTO orders (order_date, region, product, quantity, unit_price, status)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
    return path


class Order(BaseModel):
    id: int
    order_date: str
    region: str | None
    product: str
    quantity: int
    unit_price: float
    status: str


class Orders(BaseModel):
    rows: list[Order]
    count: int


class Quality(BaseModel):
    passed: bool
    checked_rows: int
    problems: list[str]


class Group(BaseModel):
    key: str
    orders: int
    revenue: float


class Aggregate(BaseModel):
    by: str
    groups: list[Group]
    total_revenue: float


class ReportFile(BaseModel):
    path: str
    bytes: int
    sha256: str


class Notification(BaseModel):
    id: str
    channel: str
    duplicate: bool = Field(description="True when this key was already delivered (a retry).")


@python_tool(max_retries=5, default_retries=2, max_timeout_seconds=300)
def query_orders(
    start_date: str = Field(description="First order date, ISO format (YYYY-MM-DD)."),
    end_date: str = Field(description="Last order date, inclusive, ISO format."),
    status: Literal["paid", "refunded", "any"] = "paid",
) -> Orders:
    """Read orders between two dates from the orders database."""
    ensure_database()
    query = "SELECT id, order_date, region, product, quantity, unit_price, status FROM orders"
    query += " WHERE order_date BETWEEN ? AND ?"
    params: list[str] = [start_date, end_date]
    if status != "any":
        query += " AND status = ?"
        params.append(status)
    with sqlite3.connect(database_path()) as db:
        db.row_factory = sqlite3.Row
        rows = [Order(**dict(r)) for r in db.execute(query + " ORDER BY id", params)]
    return Orders(rows=rows, count=len(rows))


@python_tool(max_timeout_seconds=120)
def check_quality(rows: list[Order], min_rows: int = 1, required_fields: list[str] | None = None) -> Quality:
    """Check row count and required fields; reports problems instead of failing, so a reviewer sees them."""
    problems = []
    if len(rows) < min_rows:
        problems.append(f"expected at least {min_rows} rows, got {len(rows)}")
    for name in required_fields or ["region", "product"]:
        missing = sum(1 for r in rows if getattr(r, name, None) in (None, ""))
        if missing:
            problems.append(f"{missing} rows have no {name}")
    return Quality(passed=not problems, checked_rows=len(rows), problems=problems)


@python_tool(max_timeout_seconds=120)
def aggregate_revenue(rows: list[Order], by: Literal["order_date", "region", "product"] = "region") -> Aggregate:
    """Sum revenue (quantity x unit price) and count orders per group."""
    groups: dict[str, Group] = {}
    for row in rows:
        key = str(getattr(row, by) or "unknown")
        group = groups.setdefault(key, Group(key=key, orders=0, revenue=0.0))
        group.orders += 1
        group.revenue = round(group.revenue + row.quantity * row.unit_price, 2)
    ordered = sorted(groups.values(), key=lambda g: g.key)
    return Aggregate(by=by, groups=ordered, total_revenue=round(sum(g.revenue for g in ordered), 2))


@python_tool(
    side_effects="mutating",
    max_retries=5,
    default_retries=2,
    compensation=Compensation("delete_report", {"path": "output.path"}),
)
def write_report(title: str, aggregate: Aggregate, quality: Quality, context: ToolContext) -> ReportFile:
    """Write a Markdown revenue report for this run (atomically; a retry rewrites the same file)."""
    folder = demo_dir() / "reports" / context.dag_id
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", "", f"Run: `{context.run_id}`  Plan: `{context.plan_id}` `{context.plan_hash}`", ""]
    lines += [f"| {aggregate.by} | orders | revenue |", "|---|---:|---:|"]
    lines += [f"| {g.key} | {g.orders} | {g.revenue:.2f} |" for g in aggregate.groups]
    lines += ["", f"**Total revenue:** {aggregate.total_revenue:.2f}", ""]
    lines += [f"Data quality: {'passed' if quality.passed else 'FAILED'} ({quality.checked_rows} rows)"]
    lines += [f"- {p}" for p in quality.problems]
    text = "\n".join(lines) + "\n"
    target = folder / f"{_safe(context.run_id)}.md"
    scratch = target.with_suffix(f".{context.idempotency_key}.tmp")
    scratch.write_text(text)
    scratch.replace(target)
    return ReportFile(path=str(target), bytes=len(text.encode()), sha256=hashlib.sha256(text.encode()).hexdigest())


@python_tool(
    side_effects="mutating",
    max_retries=5,
    default_retries=2,
    compensation=Compensation("retract_notification", {"notification_id": "output.id", "channel": "args.channel"}),
)
def notify(channel: str, message: str, context: ToolContext, report_path: str | None = None) -> Notification:
    """Post a message to a team channel (the demo's outbox file); delivered once per idempotency key."""
    outbox = demo_dir() / "outbox.jsonl"
    delivered = set()
    if outbox.exists():
        delivered = {json.loads(line)["id"] for line in outbox.read_text().splitlines() if line.strip()}
    if context.idempotency_key in delivered:
        return Notification(id=context.idempotency_key, channel=channel, duplicate=True)
    entry = {
        "id": context.idempotency_key,
        "channel": channel,
        "message": message,
        "report": report_path,
        "run_id": context.run_id,
    }
    with outbox.open("a") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
    return Notification(id=context.idempotency_key, channel=channel, duplicate=False)


class Deleted(BaseModel):
    path: str
    deleted: bool


@python_tool(side_effects="mutating", max_retries=5, default_retries=2)
def delete_report(path: str) -> Deleted:
    """Delete a report file written by write_report (the compensation of write_report)."""
    target = Path(path)
    reports = (demo_dir() / "reports").resolve()
    if reports not in target.resolve().parents:
        raise ValueError(f"{path} is not a report file")
    existed = target.exists()
    target.unlink(missing_ok=True)
    return Deleted(path=path, deleted=existed)


@python_tool(side_effects="mutating", max_retries=5, default_retries=2)
def retract_notification(notification_id: str, channel: str, context: ToolContext) -> Notification:
    """Tell a channel to disregard an earlier message (the compensation of notify); once per key."""
    outbox = demo_dir() / "outbox.jsonl"
    lines = outbox.read_text().splitlines() if outbox.exists() else []
    if any(json.loads(line)["id"] == context.idempotency_key for line in lines if line.strip()):
        return Notification(id=context.idempotency_key, channel=channel, duplicate=True)
    entry = {
        "id": context.idempotency_key,
        "channel": channel,
        "retracts": notification_id,
        "run_id": context.run_id,
        "message": "Please disregard the previous message: the run that sent it failed and was undone.",
    }
    with outbox.open("a") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
    return Notification(id=context.idempotency_key, channel=channel, duplicate=False)


run_sql = operator_tool(
    SQLExecuteQueryOperator,
    name="run_sql",
    description="Run one SQL statement against the orders database (connection fixed by the catalog).",
    params={"sql": {"type": "string", "minLength": 1, "maxLength": 10000}},
    fixed={"conn_id": ORDERS_CONN_ID},
    side_effects="mutating",
    max_retries=3,
    default_retries=1,
    max_timeout_seconds=300,
)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:120]


catalog = Catalog(
    [
        query_orders,
        check_quality,
        aggregate_revenue,
        write_report,
        notify,
        run_sql,
        delete_report,
        retract_notification,
    ],
    name="orders",
)
