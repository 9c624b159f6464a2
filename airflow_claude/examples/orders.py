"""A realistic data-team catalog over an embedded SQLite orders database that this module creates.

Tools: query orders, filter them, check data quality, aggregate revenue, write a report file,
notify a channel (an outbox file), and ``run_sql``, an operator-backed tool
(``SQLExecuteQueryOperator`` with the connection fixed by the catalog). Data lives under
``AIRFLOW_CLAUDE_DEMO_DIR`` (default: ``$AIRFLOW_HOME/airflow_claude_demo``). Mutating tools use
the step's idempotency key, so a retried step never writes twice.

The demo data covers whatever dates the demo runs on: each day's orders are generated the first
time a query (or :func:`ensure_database`) needs that day, and are a pure function of the date,
so a day reads the same whenever and in whatever order it was seeded (``seeded_days`` records
the days already there; one ``BEGIN IMMEDIATE`` transaction per seeding keeps concurrent tasks
from inserting a day twice).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from pydantic import BaseModel, Field

from airflow_claude.catalog import Catalog, Compensation, ToolContext, operator_tool, python_tool

ORDERS_CONN_ID = "orders_db"
_REGIONS = ("emea", "amer", "apac")
_PRODUCTS = ("basic", "pro", "enterprise")
ROWS_PER_DAY = 20
#: the longest date range one call seeds (about ten years): a typo such as 0026-01-01 fails fast
MAX_SEED_DAYS = 3700
DEFAULT_SEED = 7
_SCHEMA_VERSION = 1  # PRAGMA user_version of a database laid out as below
_BUSY_TIMEOUT_SECONDS = 30


def demo_dir() -> Path:
    """Where the demo database, reports and outbox live."""
    default = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "airflow_claude_demo"
    path = Path(os.environ.get("AIRFLOW_CLAUDE_DEMO_DIR", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_path() -> Path:
    return demo_dir() / "orders.db"


def query_log_path() -> Path:
    return demo_dir() / "query_log.jsonl"


def orders_connection_env(path: Path | None = None) -> dict[str, str]:
    """The ``AIRFLOW_CONN_ORDERS_DB`` variable that points the ``run_sql`` tool at the demo database."""
    return {
        f"AIRFLOW_CONN_{ORDERS_CONN_ID.upper()}": json.dumps(
            {"conn_type": "sqlite", "host": str(path or database_path())}
        )
    }


def ensure_database(
    path: Path | None = None,
    *,
    start_date: date | str | None = None,
    end_date: date | str | None = None,
    days: int = 120,
    ahead: int = 7,
    seed: int = DEFAULT_SEED,
) -> Path:
    """Create the orders database if needed and make sure every day in [start_date, end_date] has its rows.

    Without dates: the ``days`` days up to today (UTC) and ``ahead`` days after, so tables that
    read every order (``run_sql``'s summary) have data. Days already seeded are left as they are.
    Raises ValueError for a malformed date or a range of more than :data:`MAX_SEED_DAYS` days.
    """
    path = path or database_path()
    today = datetime.now(UTC).date()
    first = _as_date(start_date, "start_date") if start_date is not None else today - timedelta(days=days - 1)
    last = _as_date(end_date, "end_date") if end_date is not None else today + timedelta(days=ahead)
    wanted = _days_between(first, last)
    with closing(sqlite3.connect(path, timeout=_BUSY_TIMEOUT_SECONDS, isolation_level=None)) as db:
        if not _all_seeded(db, first, last, len(wanted)):
            _seed(db, wanted, seed)
    return path


def day_rows(day: date, seed: int = DEFAULT_SEED) -> list[tuple[Any, ...]]:
    """One day's orders as ``(id, order_date, region, product, quantity, unit_price, status)``.

    A pure function of the day (and seed): the same rows whenever and in whatever order days are seeded.
    """
    rng = random.Random(f"{seed}:{day.isoformat()}")
    base = (day.year * 10_000 + day.month * 100 + day.day) * 100  # ids read as YYYYMMDDnn
    rows = []
    for i in range(ROWS_PER_DAY):
        region = rng.choice(_REGIONS) if rng.random() > 0.01 else None  # a few bad rows, on purpose
        rows.append(
            (
                base + i,
                day.isoformat(),
                region,
                rng.choice(_PRODUCTS),
                rng.randint(1, 5),
                rng.choice((9.0, 29.0, 99.0)),
                rng.choice(("paid", "paid", "paid", "refunded")),
            )
        )
    return rows


def _as_date(value: date | str, name: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a date in ISO format (YYYY-MM-DD), got {value!r}") from None


def _days_between(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last`` inclusive (none when last < first), bounded by MAX_SEED_DAYS."""
    count = (last - first).days + 1
    if count > MAX_SEED_DAYS:
        raise ValueError(
            f"the range {first.isoformat()} .. {last.isoformat()} spans {count} days; "
            f"the demo database seeds at most {MAX_SEED_DAYS} days at a time (about ten years)"
        )
    return [first + timedelta(days=i) for i in range(max(count, 0))]


def _all_seeded(db: sqlite3.Connection, first: date, last: date, expected: int) -> bool:
    """The read-only fast path: True when the schema is current and every wanted day is there."""
    if db.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
        return False
    try:
        (seeded,) = db.execute(
            "SELECT COUNT(*) FROM seeded_days WHERE day BETWEEN ? AND ?", (first.isoformat(), last.isoformat())
        ).fetchone()
    except sqlite3.OperationalError:  # no seeded_days table yet
        return False
    return bool(seeded == expected)


def _seed(db: sqlite3.Connection, wanted: list[date], seed: int) -> None:
    """Insert the missing days in one write transaction (BEGIN IMMEDIATE: one seeder at a time)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if db.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
            # a database from before per-day seeding holds generated rows that seeded_days does not know
            # (and a summary made from them): drop them and seed afresh, day by day
            for name, kind in db.execute(
                "SELECT name, type FROM sqlite_master WHERE name IN ('orders', 'seeded_days', 'daily_revenue')"
                " AND type IN ('table', 'view')"
            ).fetchall():
                db.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
            db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        db.execute(
            "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, order_date TEXT NOT NULL,"
            " region TEXT, product TEXT NOT NULL, quantity INTEGER NOT NULL, unit_price REAL NOT NULL,"
            " status TEXT NOT NULL)"
        )
        db.execute("CREATE INDEX IF NOT EXISTS orders_by_date ON orders (order_date)")
        db.execute("CREATE TABLE IF NOT EXISTS seeded_days (day TEXT PRIMARY KEY)")
        if wanted:
            present = {
                row[0]
                for row in db.execute(
                    "SELECT day FROM seeded_days WHERE day BETWEEN ? AND ?",
                    (wanted[0].isoformat(), wanted[-1].isoformat()),
                )
            }
            missing = [day for day in wanted if day.isoformat() not in present]
            db.executemany(
                "INSERT INTO orders (id, order_date, region, product, quantity, unit_price, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [row for day in missing for row in day_rows(day, seed)],
            )
            db.executemany("INSERT INTO seeded_days (day) VALUES (?)", [(day.isoformat(),) for day in missing])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def query_log(folder: Path | None = None) -> list[dict[str, Any]]:
    """Every ``query_orders`` call recorded in ``query_log.jsonl`` (of ``folder``, else the demo dir), oldest first."""
    path = folder / "query_log.jsonl" if folder is not None else query_log_path()
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _append_line(path: Path, entry: dict[str, Any]) -> None:
    """One ``write`` of one line with O_APPEND: concurrent writers never interleave their lines."""
    data = (json.dumps(entry, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


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
    context: ToolContext,
    start_date: str = Field(description="First order date, ISO format (YYYY-MM-DD)."),
    end_date: str = Field(description="Last order date, inclusive, ISO format."),
    status: Literal["paid", "refunded", "any"] = "paid",
) -> Orders:
    """Read orders between two dates (inclusive) from the orders database."""
    first, last = _as_date(start_date, "start_date"), _as_date(end_date, "end_date")
    ensure_database(start_date=first, end_date=last)
    query = "SELECT id, order_date, region, product, quantity, unit_price, status FROM orders"
    query += " WHERE order_date BETWEEN ? AND ?"
    params: list[str] = [first.isoformat(), last.isoformat()]
    if status != "any":
        query += " AND status = ?"
        params.append(status)
    with closing(sqlite3.connect(database_path(), timeout=_BUSY_TIMEOUT_SECONDS)) as db:
        db.row_factory = sqlite3.Row
        rows = [Order(**dict(r)) for r in db.execute(query + " ORDER BY id", params)]
    _append_line(
        query_log_path(),
        {
            "run_id": getattr(context, "run_id", None),
            "dag_id": getattr(context, "dag_id", None),
            "step_id": getattr(context, "step_id", None),
            "idempotency_key": getattr(context, "idempotency_key", None),
            "start_date": first.isoformat(),
            "end_date": last.isoformat(),
            "status": status,
            "count": len(rows),
        },
    )
    return Orders(rows=rows, count=len(rows))


@python_tool(max_timeout_seconds=120)
def filter_orders(
    rows: list[Order],
    region: str | None = Field(None, description="Keep only this region's orders; null keeps every region."),
    min_order_value: float = Field(0, ge=0, description="Keep orders worth at least this (quantity x unit price)."),
) -> Orders:
    """Keep the orders of one region (or all) whose value, quantity x unit price, is at least min_order_value."""
    kept = [
        row
        for row in rows
        if (region is None or row.region == region) and row.quantity * row.unit_price >= min_order_value
    ]
    return Orders(rows=kept, count=len(kept))


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
def write_report(
    title: str,
    aggregate: Aggregate,
    quality: Quality,
    context: ToolContext,
    period: str | None = Field(None, description="The period the report covers, e.g. a day (YYYY-MM-DD)."),
) -> ReportFile:
    """Write a Markdown revenue report for this run (atomically; a retry rewrites the same file)."""
    folder = demo_dir() / "reports" / context.dag_id
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", ""]
    if period:
        lines += [f"Period: **{period}**", ""]
    lines += [f"Run: `{context.run_id}`  Plan: `{context.plan_id}` `{context.plan_hash}`", ""]
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
        filter_orders,
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
