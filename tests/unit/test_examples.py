"""The orders example: its plans validate, its demo data is deterministic per day and seeded once."""

from __future__ import annotations

import json
import logging
import multiprocessing
import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_claude.catalog import ToolContext
from airflow_claude.examples import orders
from airflow_claude.examples.orders import catalog
from airflow_claude.plan.loader import load_plan_file
from airflow_claude.plan.validator import validate_plan
from airflow_claude.testing.fake_claude._script import MESSAGES_PATH, RequestContext, load_rules

REPO = Path(__file__).parents[2]
PLANS = sorted((REPO / "dags" / "plans").glob("*.json"))
DEMO_SCRIPT = REPO / "airflow_claude" / "examples" / "demo_claude.json"


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "demo"
    monkeypatch.setenv("AIRFLOW_CLAUDE_DEMO_DIR", str(folder))
    return folder


def context(step_id: str = "extract_orders", run_id: str = "manual__1", dag_id: str = "example") -> ToolContext:
    return ToolContext(
        idempotency_key=f"ik_{dag_id}_{run_id}_{step_id}",
        dag_id=dag_id,
        run_id=run_id,
        step_id=step_id,
        plan_id="example",
        plan_hash="sha256:0",
        try_number=1,
        log=logging.getLogger("test_examples"),
    )


def freeze_today(monkeypatch: pytest.MonkeyPatch, today: date) -> None:
    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Frozen:
            return cls(today.year, today.month, today.day, 12, tzinfo=UTC)

    monkeypatch.setattr(orders, "datetime", Frozen)


def rows_by_day(path: Path, first: str, last: str) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(path) as db:
        found: dict[str, list[tuple[Any, ...]]] = {}
        for row in db.execute(
            "SELECT * FROM orders WHERE order_date BETWEEN ? AND ? ORDER BY id", (first, last)
        ).fetchall():
            found.setdefault(row[1], []).append(tuple(row))
    return found


def counts_per_day(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT order_date, COUNT(*) FROM orders GROUP BY order_date").fetchall())


# --- plans ---------------------------------------------------------------------------------------


def test_the_plans_folder_is_not_empty() -> None:
    assert {p.stem for p in PLANS} >= {"nightly_orders_report", "regional_orders_report"}


@pytest.mark.parametrize("path", PLANS, ids=[p.stem for p in PLANS])
def test_every_plan_file_validates_against_the_orders_catalog(path: Path) -> None:
    result = load_plan_file(path, catalog)
    assert result.ok, [str(issue) for issue in result.issues]


def test_nightly_plan_reads_the_runs_day_through_run_references() -> None:
    plan = json.loads((REPO / "dags" / "plans" / "nightly_orders_report.json").read_text())
    extract = next(s for s in plan["steps"] if s["id"] == "extract_orders")
    assert extract["args"]["start_date"] == {"$ref": "run.data_interval_start_ds"}
    assert extract["args"]["end_date"] == {"$ref": "run.data_interval_last_ds"}
    check = next(s for s in plan["steps"] if s["id"] == "check_orders")
    assert check["args"]["min_rows"] <= orders.ROWS_PER_DAY // 2  # passes on one day of paid orders
    assert [s["id"] for s in plan["steps"]] == [
        "extract_orders",
        "check_orders",
        "revenue_by_region",
        "refresh_daily_summary",
        "write_revenue_report",
        "notify_team",
    ]


def test_regional_plan_declares_typed_params_and_a_param_of_the_wrong_type_is_refused() -> None:
    path = REPO / "dags" / "plans" / "regional_orders_report.json"
    plan = json.loads(path.read_text())
    assert plan["schedule"] is None
    assert plan["params"]["region"]["type"] == "string" and plan["params"]["min_order_value"]["type"] == "number"
    wrong = json.loads(path.read_text())
    wrong["params"]["region"] = {"type": "integer", "default": 1}
    codes = {issue.code for issue in validate_plan(wrong, catalog).issues}
    assert "reference_type_mismatch" in codes


# --- deterministic, lazy per-day seeding ---------------------------------------------------------


def test_a_days_rows_do_not_depend_on_when_or_how_the_database_was_seeded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    early, late, ranged, single = (tmp_path / f"{n}.db" for n in ("early", "late", "ranged", "single"))
    freeze_today(monkeypatch, date(2026, 11, 20))
    orders.ensure_database(early)  # a window around 2026-11-20
    freeze_today(monkeypatch, date(2027, 2, 1))
    orders.ensure_database(late)  # a window around 2027-02-01: 2026-11-01 .. 2026-11-20 overlap
    orders.ensure_database(ranged, start_date="2026-11-01", end_date="2026-11-10")
    for offset in (9, 3, 0, 5, 1, 8, 2, 7, 4, 6):  # one day at a time, out of order
        day = (date(2026, 11, 1) + timedelta(days=offset)).isoformat()
        orders.ensure_database(single, start_date=day, end_date=day)

    expected = rows_by_day(ranged, "2026-11-01", "2026-11-10")
    assert len(expected) == 10 and all(len(rows) == orders.ROWS_PER_DAY for rows in expected.values())
    for path in (early, late, single):
        assert rows_by_day(path, "2026-11-01", "2026-11-10") == expected
    assert [list(r) for r in expected["2026-11-03"]] == [
        list(r) for r in orders.day_rows(date(2026, 11, 3))
    ]  # the database holds exactly the pure function's rows


def test_ensure_database_without_dates_seeds_a_window_up_to_today_and_a_week_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_today(monkeypatch, date(2026, 12, 2))
    path = orders.ensure_database(tmp_path / "orders.db")
    counts = counts_per_day(path)
    assert min(counts) == (date(2026, 12, 2) - timedelta(days=119)).isoformat()
    assert max(counts) == "2026-12-09"
    assert set(counts.values()) == {orders.ROWS_PER_DAY} and len(counts) == 120 + 7


def test_the_demo_data_keeps_its_distribution() -> None:
    rows = [row for i in range(365) for row in orders.day_rows(date(2026, 1, 1) + timedelta(days=i))]
    regions = {row[2] for row in rows}
    assert regions == {"emea", "amer", "apac", None}
    assert 0 < sum(row[2] is None for row in rows) < len(rows) * 0.03  # about 1% on purpose
    assert {row[3] for row in rows} == {"basic", "pro", "enterprise"}
    assert {row[4] for row in rows} == {1, 2, 3, 4, 5}
    assert {row[5] for row in rows} == {9.0, 29.0, 99.0}
    paid = sum(row[6] == "paid" for row in rows) / len(rows)
    assert {row[6] for row in rows} == {"paid", "refunded"} and 0.7 < paid < 0.8


def test_a_range_over_the_bound_is_refused(demo: Path) -> None:
    with pytest.raises(ValueError, match="3700"):
        orders.ensure_database(start_date="2000-01-01", end_date="2026-01-01")
    with pytest.raises(ValueError, match="3700"):
        orders.query_orders.call({"start_date": "0026-01-01", "end_date": "2026-01-01"}, context())
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        orders.query_orders.call({"start_date": "yesterday", "end_date": "2026-01-01"}, context())
    first = date(2020, 1, 1)
    orders.ensure_database(start_date=first, end_date=first + timedelta(days=orders.MAX_SEED_DAYS - 1))
    assert len(counts_per_day(orders.database_path())) == orders.MAX_SEED_DAYS


def test_an_empty_range_seeds_and_returns_nothing(demo: Path) -> None:
    result = orders.query_orders.call({"start_date": "2026-11-02", "end_date": "2026-11-01"}, context())
    assert result.count == 0 and result.rows == []


def _seed_in_process(path: str, first: str, last: str) -> None:
    orders.ensure_database(Path(path), start_date=first, end_date=last)


def test_concurrent_seeding_inserts_each_day_once(tmp_path: Path) -> None:
    path = tmp_path / "orders.db"
    ranges = [("2026-01-01", "2026-06-30"), ("2026-03-01", "2026-09-30"), ("2026-05-01", "2026-05-31")] * 3
    barrier = threading.Barrier(len(ranges))
    errors: list[BaseException] = []

    def seed(first: str, last: str) -> None:
        try:
            barrier.wait()
            orders.ensure_database(path, start_date=first, end_date=last)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=seed, args=r) for r in ranges]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    counts = counts_per_day(path)
    assert len(counts) == (date(2026, 9, 30) - date(2026, 1, 1)).days + 1
    assert set(counts.values()) == {orders.ROWS_PER_DAY}
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM seeded_days").fetchone()[0] == len(counts)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_concurrent_seeding_from_two_processes_inserts_each_day_once(tmp_path: Path) -> None:
    path = str(tmp_path / "orders.db")
    fork = multiprocessing.get_context("fork")
    workers = [
        fork.Process(target=_seed_in_process, args=(path, "2025-01-01", "2026-12-31")),
        fork.Process(target=_seed_in_process, args=(path, "2025-06-01", "2027-06-30")),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    counts = counts_per_day(Path(path))
    assert len(counts) == (date(2027, 6, 30) - date(2025, 1, 1)).days + 1
    assert set(counts.values()) == {orders.ROWS_PER_DAY}


def test_a_database_from_before_per_day_seeding_is_reseeded(tmp_path: Path) -> None:
    path = tmp_path / "orders.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, order_date TEXT NOT NULL, region TEXT,"
            " product TEXT NOT NULL, quantity INTEGER NOT NULL, unit_price REAL NOT NULL, status TEXT NOT NULL)"
        )
        db.executemany(
            "INSERT INTO orders (order_date, region, product, quantity, unit_price, status) VALUES (?, ?, ?, ?, ?, ?)",
            [("2026-11-01", "emea", "pro", 1, 9.0, "paid")] * 30,
        )
    orders.ensure_database(path, start_date="2026-11-01", end_date="2026-11-02")
    assert counts_per_day(path) == {"2026-11-01": orders.ROWS_PER_DAY, "2026-11-02": orders.ROWS_PER_DAY}


# --- tools ---------------------------------------------------------------------------------------


def test_query_orders_reads_its_range_and_records_each_call(demo: Path) -> None:
    assert orders.query_log() == []
    nov = orders.query_orders.call(
        {"start_date": "2026-11-01", "end_date": "2026-11-01"}, context(run_id="backfill__2026-11-01")
    )
    both = orders.query_orders.call(
        {"start_date": "2026-11-01", "end_date": "2026-11-02", "status": "any"}, context(run_id="r2")
    )
    assert {row.order_date for row in nov.rows} == {"2026-11-01"} and {r.status for r in nov.rows} == {"paid"}
    assert both.count == 2 * orders.ROWS_PER_DAY and nov.count == len(nov.rows) > 0
    log = orders.query_log()
    assert log == [
        {
            "run_id": "backfill__2026-11-01",
            "dag_id": "example",
            "step_id": "extract_orders",
            "start_date": "2026-11-01",
            "end_date": "2026-11-01",
            "status": "paid",
            "count": nov.count,
            "idempotency_key": "ik_example_backfill__2026-11-01_extract_orders",
        },
        {
            "run_id": "r2",
            "dag_id": "example",
            "step_id": "extract_orders",
            "start_date": "2026-11-01",
            "end_date": "2026-11-02",
            "status": "any",
            "count": both.count,
            "idempotency_key": "ik_example_r2_extract_orders",
        },
    ]
    assert "context" not in orders.query_orders.input_schema["properties"]


def test_filter_orders_keeps_one_region_above_a_minimum_value() -> None:
    def order(i: int, region: str | None, quantity: int, price: float) -> orders.Order:
        return orders.Order(
            id=i,
            order_date="2026-11-01",
            region=region,
            product="pro",
            quantity=quantity,
            unit_price=price,
            status="paid",
        )

    rows = [order(1, "emea", 1, 9.0), order(2, "emea", 2, 29.0), order(3, "amer", 5, 99.0), order(4, None, 3, 99.0)]
    tool = orders.filter_orders
    assert tool.side_effects == "read_only" and "filter_orders" in catalog
    kept = tool.call({"rows": [r.model_dump() for r in rows], "region": "emea", "min_order_value": 20})
    assert [r.id for r in kept.rows] == [2] and kept.count == 1
    assert [r.id for r in tool.call({"rows": rows}).rows] == [1, 2, 3, 4]
    assert [r.id for r in tool.call({"rows": rows, "min_order_value": 58}).rows] == [2, 3, 4]
    assert tool.call({"rows": rows, "region": "apac"}).count == 0
    assert tool.input_schema["properties"]["min_order_value"]["minimum"] == 0


def test_write_report_says_which_period_it_covers(demo: Path) -> None:
    aggregate = orders.aggregate_revenue.call({"rows": [], "by": "region"})
    quality = orders.check_quality.call({"rows": [], "min_rows": 0})
    args = {"title": "Revenue", "aggregate": aggregate.model_dump(), "quality": quality.model_dump()}
    with_period = orders.write_report.call({**args, "period": "2026-11-01"}, context(step_id="report"))
    assert "Period: **2026-11-01**" in Path(with_period.path).read_text()
    without = orders.write_report.call(args, context(step_id="report", run_id="r2"))
    assert "Period" not in Path(without.path).read_text()


# --- the offline Claude's demo script ------------------------------------------------------------


def _plan_rules() -> list[dict[str, Any]]:
    rules = json.loads(DEMO_SCRIPT.read_text())["rules"]
    return [r for r in rules if r["respond"].get("tool_use", {}).get("name") == "submit_plan"]


@pytest.mark.parametrize("index", range(len(_plan_rules())))
def test_every_scripted_plan_validates(index: int) -> None:
    rule = _plan_rules()[index]
    document = {
        "schema_version": "1",
        "id": f"scripted_plan_{index}",
        "goal": "A scripted plan of the demo.",
        "steps": rule["respond"]["tool_use"]["input"]["steps"],
        "provenance": {"created_by": "claude"},
    }
    result = validate_plan(document, catalog)
    assert result.ok, [str(issue) for issue in result.issues]


def test_a_relative_goal_gets_the_plan_with_run_references_and_other_goals_do_not() -> None:
    rules = load_rules(DEMO_SCRIPT)
    body = {"tool_choice": {"type": "tool", "name": "submit_plan"}, "tools": [{"name": "submit_plan"}]}

    def first_plan(goal: str) -> dict[str, Any]:
        # the planning prompt itself mentions "yesterday": only the goal may pick the relative plan
        text = json.dumps(
            {**body, "system": 'a period such as "yesterday" or "last month"', "messages": [f"<goal>{goal}</goal>"]}
        )
        ctx = RequestContext(path=MESSAGES_PATH, body=body, text=text, call_index=0)
        rule = next(r for r in rules if r.matches(ctx))
        assert not callable(rule.respond)
        return dict(rule.respond["tool_use"]["input"])

    nightly = first_plan(
        "Check yesterday's paid orders for data-quality problems, report revenue by region, tell #data-team."
    )
    extract = nightly["steps"][0]
    assert extract["args"]["start_date"] == {"$ref": "run.data_interval_start_ds"}
    assert extract["args"]["end_date"] == {"$ref": "run.data_interval_last_ds"}
    assert nightly["steps"][1]["args"]["min_rows"] == 10
    october = first_plan("Report October 2026 revenue by region, check the data quality, and tell #data-team.")
    assert october["steps"][0]["args"]["start_date"] == "2026-10-01"
