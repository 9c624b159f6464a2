"""Compiled plans through a REAL Airflow 3 (scheduler, dag-processor, api-server), not ``dag.test``.

One Airflow instance serves the whole module. Its DAG folder holds copies of the repo's
``dags/nightly_plans.py`` and ``dags/plans/`` beside the test loader ``e2e_plans.py`` (with its
catalog ``e2e_tools.py`` and the plans in ``e2e_plan_files/``: a retry plan, a template-payload
plan and a broken plan). Known files are re-parsed only on request, so ``force_reparse`` and DAG
versions are observable. Everything is checked through the REST API and the files tools write.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from airflow_claude.examples import orders
from airflow_claude.factory.build import INVALID_TAG
from airflow_claude.observability.records import parse_record
from airflow_claude.plan.loader import load_plan_file
from airflow_claude.runtime.provenance import PROVENANCE_XCOM_KEY
from tests.harness.airflow_instance import AirflowApiError, AirflowInstance

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DAGS_PLANS = Path(__file__).parent / "dags_plans"
NIGHTLY = "nightly_orders_report"
RETRY = "e2e_retry_plan"
TEMPLATES = "e2e_template_plan"
BROKEN = "e2e_broken_plan"
INTERVAL = "e2e_interval_plan"
REGIONAL = "regional_orders_report"
NIGHTLY_DATE = "2026-10-15T06:00:00+00:00"  # a manual run's logical date: its data interval is the day before
NIGHTLY_STEPS = [s["id"] for s in json.loads((REPO / "dags" / "plans" / f"{NIGHTLY}.json").read_text())["steps"]]
TEMPLATE_PAYLOAD = {
    "math": "{{ 7 * 7 }}",
    "loop": "{% for x in [1,2] %}{{ x }}{% endfor %}",
    "variable": "{{ var.value.anything }}",
}
RUN_TIMEOUT = 300.0  # three runs share 2 cores with other engineers' jobs
REPARSE_TIMEOUT = 90.0


@dataclass
class Setup:
    dags: Path
    demo: Path
    env: dict[str, str]
    tools: ModuleType
    runs: dict[str, str] = field(default_factory=dict)
    instances: list[AirflowInstance] = field(default_factory=list)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    base = tmp_path_factory.mktemp("plans_e2e")
    dags = base / "dags"
    shutil.copytree(DAGS_PLANS, dags, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "dags" / "nightly_plans.py", dags / "nightly_plans.py")
    shutil.copytree(REPO / "dags" / "plans", dags / "plans")
    demo = base / "demo"
    demo.mkdir()
    orders.ensure_database(demo / "orders.db")  # seeded once, before any task touches it
    env = {
        "AIRFLOW_CLAUDE_DEMO_DIR": str(demo),
        **orders.orders_connection_env(demo / "orders.db"),
        # known files are re-parsed only on request: force_reparse and DAG versions become observable
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
    }
    state = Setup(dags=dags, demo=demo, env=env, tools=_import_tools(dags / "e2e_tools.py"))
    yield state
    for instance in state.instances:  # one instance per module: stop it when the module is done
        instance.stop()


@pytest.fixture
def af(airflow_instance_factory: Any, setup: Setup) -> AirflowInstance:
    instance: AirflowInstance = airflow_instance_factory(setup.dags, shared=True, extra_env=setup.env)
    if instance not in setup.instances:
        setup.instances.append(instance)
    return instance


@pytest.fixture
def runs(af: AirflowInstance, setup: Setup, e2e_timing: Any) -> dict[str, str]:
    """The three good plans, triggered once for the module, all at once (they run side by side)."""
    if not setup.runs:
        t0 = time.monotonic()
        for dag_id in (NIGHTLY, RETRY, TEMPLATES, BROKEN, INTERVAL, REGIONAL):
            af.wait_for_dag(dag_id, timeout=120)
        e2e_timing("all plan DAGs visible", time.monotonic() - t0)
        setup.runs[NIGHTLY] = af.trigger(NIGHTLY, logical_date=NIGHTLY_DATE)
        for dag_id in (RETRY, TEMPLATES, INTERVAL):  # INTERVAL: a manual run with no logical date
            setup.runs[dag_id] = af.trigger(dag_id)
    return setup.runs


def test_nightly_plan_runs_one_task_per_step(af: AirflowInstance, runs: dict[str, str], setup: Setup, e2e_timing):
    run_id = runs[NIGHTLY]
    t0 = time.monotonic()
    assert af.wait_for_run(NIGHTLY, run_id, timeout=RUN_TIMEOUT) == "success"
    e2e_timing("nightly run (6 steps) waited", time.monotonic() - t0)

    every = {t["task_id"]: t for t in af.task_instances(NIGHTLY, run_id)}
    saga = {task_id: t["state"] for task_id, t in every.items() if task_id.startswith("saga.")}
    # a successful run undoes nothing: the compensations of the two mutating steps are skipped
    assert saga == {
        "saga.undo_write_revenue_report": "skipped",
        "saga.undo_notify_team": "skipped",
        "saga.steps_done": "success",
        "saga.outcome": "success",
    }
    tis = {task_id: t for task_id, t in every.items() if task_id not in saga}
    assert sorted(tis) == sorted(NIGHTLY_STEPS)
    assert {t["state"] for t in tis.values()} == {"success"}
    assert {t["map_index"] for t in tis.values()} == {-1}

    # the operator-backed step is the catalog's operator itself, and it really ran its SQL
    refresh = tis["refresh_daily_summary"]
    assert refresh["operator"] == "SQLExecuteQueryOperator"
    # the run reports its own data interval, read through run references
    day = _interval_days(af, NIGHTLY, run_id)
    assert day == ("2026-10-14", "2026-10-14")
    extract_prov = af.xcom(NIGHTLY, run_id, "extract_orders", key=PROVENANCE_XCOM_KEY)
    assert extract_prov["run_values"] == {
        "run.data_interval_last_ds": "2026-10-14",
        "run.data_interval_start_ds": "2026-10-14",
    }
    assert [(q["start_date"], q["end_date"]) for q in orders.query_log(setup.demo) if q["run_id"] == run_id] == [day]
    with sqlite3.connect(setup.demo / "orders.db") as db:
        assert db.execute("SELECT COUNT(*) FROM daily_revenue").fetchone()[0] > 0
        expected = _paid_revenue_by_region(db, *day)
    refresh_prov = af.xcom(NIGHTLY, run_id, "refresh_daily_summary", key=PROVENANCE_XCOM_KEY)
    assert refresh_prov["tool"] == "run_sql" and refresh_prov["step_id"] == "refresh_daily_summary"

    # outputs flowed by reference: the aggregate matches the database, the report matches the aggregate
    aggregate = af.xcom(NIGHTLY, run_id, "revenue_by_region")
    assert {g["key"]: g["revenue"] for g in aggregate["groups"]} == pytest.approx(expected)
    assert aggregate["total_revenue"] == pytest.approx(sum(expected.values()))
    report = af.xcom(NIGHTLY, run_id, "write_revenue_report")
    report_path = Path(report["path"])
    assert report_path.parent == setup.demo / "reports" / NIGHTLY
    assert report_path.exists(), report_path
    text = report_path.read_text()
    expected_hash = load_plan_file(REPO / "dags" / "plans" / f"{NIGHTLY}.json", orders.catalog).plan.hash
    assert f"`{expected_hash}`" in text
    assert f"Run: `{run_id}`" in text
    assert "| region | orders | revenue |" in text
    for group in aggregate["groups"]:
        assert f"| {group['key']} | {group['orders']} | {group['revenue']:.2f} |" in text
    assert {"amer", "apac", "emea"} <= {g["key"] for g in aggregate["groups"]}
    assert f"**Total revenue:** {aggregate['total_revenue']:.2f}" in text

    notified = af.xcom(NIGHTLY, run_id, "notify_team")
    assert notified["duplicate"] is False
    outbox = [json.loads(line) for line in (setup.demo / "outbox.jsonl").read_text().splitlines()]
    assert [e["report"] for e in outbox if e["run_id"] == run_id] == [str(report_path)]

    # the plan's schedule reached the DAG: with catchup off, the scheduler itself starts the latest nightly run
    assert af.dag(NIGHTLY)["timetable_summary"] == "0 0 * * *"
    deadline = time.monotonic() + 60
    while not (scheduled := [r for r in _runs_of(af, NIGHTLY) if r["run_type"] == "scheduled"]):
        assert time.monotonic() < deadline, "the scheduler never created a scheduled run of the nightly plan"
        time.sleep(1.0)
    assert all(re.fullmatch(r"scheduled__\d{4}-\d\d-\d\dT00:00:00\+00:00", r["dag_run_id"]) for r in scheduled)
    assert af.wait_for_run(NIGHTLY, scheduled[0]["dag_run_id"], timeout=RUN_TIMEOUT) == "success"

    # every step logs structured records, operator steps included
    for step_id in ("write_revenue_report", "refresh_daily_summary"):
        finished = _records(af.task_log(NIGHTLY, run_id, step_id, try_number=1), "step.finished")
        assert len(finished) == 1, step_id
        assert finished[0]["step_id"] == step_id
        assert finished[0]["plan_id"] == NIGHTLY and finished[0]["run_id"] == run_id
        assert finished[0]["dag_id"] == NIGHTLY and finished[0]["try_number"] == 1


def test_retry_uses_ref_value_and_keeps_idempotency_key(
    af: AirflowInstance, runs: dict[str, str], setup: Setup, e2e_timing
):
    run_id = runs[RETRY]
    t0 = time.monotonic()
    assert af.wait_for_run(RETRY, run_id, timeout=RUN_TIMEOUT) == "success"
    e2e_timing("retry run waited", time.monotonic() - t0)

    tries = af.task_tries(RETRY, run_id, "flaky_sum")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    assert [(t["try_number"], t["state"]) for t in af.task_tries(RETRY, run_id, "count_orders")] == [(1, "success")]

    counted = af.xcom(RETRY, run_id, "count_orders")
    with sqlite3.connect(setup.demo / "orders.db") as db:
        in_db = db.execute(
            "SELECT COUNT(*) FROM orders WHERE status = 'paid' AND order_date BETWEEN '2026-10-01' AND '2026-10-02'"
        ).fetchone()[0]
    assert counted["count"] == len(counted["rows"]) == in_db > 0
    assert af.xcom(RETRY, run_id, "flaky_sum") == {"total": 3 * in_db, "seen": in_db, "try_number": 2}

    plan = load_plan_file(setup.dags / "e2e_plan_files" / f"{RETRY}.json", setup.tools.catalog).plan
    prov = af.xcom(RETRY, run_id, "flaky_sum", key=PROVENANCE_XCOM_KEY)
    assert {k: prov[k] for k in ("plan_id", "plan_hash", "step_id", "tool", "tool_version", "dag_id", "run_id")} == {
        "plan_id": RETRY,
        "plan_hash": plan.hash,
        "step_id": "flaky_sum",
        "tool": "flaky_total",
        "tool_version": "1",
        "dag_id": RETRY,
        "run_id": run_id,
    }
    assert prov["catalog_fingerprint"] == setup.tools.catalog.fingerprint
    assert prov["try_number"] == 2 and prov["idempotency_key"].startswith("ik_")
    upstream_prov = af.xcom(RETRY, run_id, "count_orders", key=PROVENANCE_XCOM_KEY)
    assert upstream_prov["tool"] == "query_orders" and upstream_prov["plan_hash"] == plan.hash
    assert upstream_prov["idempotency_key"] != prov["idempotency_key"]

    # what the tool saw on each try: the same key, the same referenced value
    seen_file = setup.demo / "flaky" / f"{setup.tools.safe_name(run_id)}__flaky_sum.jsonl"
    seen = [json.loads(line) for line in seen_file.read_text().splitlines()]
    assert [s["try_number"] for s in seen] == [1, 2]
    assert {s["idempotency_key"] for s in seen} == {prov["idempotency_key"]}
    assert {s["count"] for s in seen} == {in_db}

    first = af.task_log(RETRY, run_id, "flaky_sum", try_number=1)
    assert "failing try 1 on purpose" in first
    failed = _records(first, "step.failed")
    assert len(failed) == 1 and failed[0]["retryable"] is True and failed[0]["try_number"] == 1
    finished = _records(af.task_log(RETRY, run_id, "flaky_sum", try_number=2), "step.finished")
    assert len(finished) == 1
    record = finished[0]
    assert (record["step_id"], record["plan_id"], record["run_id"], record["dag_id"]) == (
        "flaky_sum",
        RETRY,
        run_id,
        RETRY,
    )
    assert record["try_number"] == 2 and record["idempotency_key"] == prov["idempotency_key"]
    assert record["tool"] == "flaky_total" and record["duration_s"] >= 0


def test_template_payloads_arrive_verbatim(af: AirflowInstance, runs: dict[str, str], setup: Setup):
    run_id = runs[TEMPLATES]
    assert af.wait_for_run(TEMPLATES, run_id, timeout=RUN_TIMEOUT) == "success"
    expected = {"payload": TEMPLATE_PAYLOAD, "label": "{{ run_id }}"}

    written = setup.demo / "echo" / f"{TEMPLATES}__{setup.tools.safe_name(run_id)}__echo_templates.json"
    assert json.loads(written.read_text()) == expected
    assert af.xcom(TEMPLATES, run_id, "echo_templates") == expected

    # the operator step (a SQL template field) received the literal text, never rendered nor read as a file
    rows = af.xcom(TEMPLATES, run_id, "sql_templates")
    assert [list(row) for row in rows] == [list(TEMPLATE_PAYLOAD.values())]
    rendered = af.task_instance(TEMPLATES, run_id, "sql_templates").get("rendered_fields") or {}
    assert rendered.get("sql") == (
        "SELECT '{{ 7 * 7 }}' AS a, '{% for x in [1,2] %}{{ x }}{% endfor %}' AS b, '{{ var.value.anything }}' AS c"
    )


def test_broken_plan_is_visible_and_hides_nothing(af: AirflowInstance, runs: dict[str, str], setup: Setup):
    broken = af.dag(BROKEN)
    assert broken["is_paused"] is True
    assert INVALID_TAG in {t["name"] for t in broken["tags"]}
    assert broken["description"].startswith("INVALID PLAN (2 problems)")
    details = af.get(f"/dags/{BROKEN}/details")
    for needle in ("[unknown_tool]", "no_such_tool", "[dependency_cycle]", "first -> second -> first"):
        assert needle in details["doc_md"], needle
    assert [t["task_id"] for t in af.get(f"/dags/{BROKEN}/tasks")["tasks"]] == ["plan_invalid"]

    # the loader did not fail: no import error at all, and the good plans of the same file are there and ran
    assert af.import_errors() == []
    loader = str(setup.dags / "e2e_plans.py")
    assert {af.dag(d)["fileloc"] for d in (BROKEN, RETRY, TEMPLATES)} == {loader}
    for dag_id in (RETRY, TEMPLATES):
        assert af.dag(dag_id)["is_paused"] is False
        assert INVALID_TAG not in {t["name"] for t in af.dag(dag_id)["tags"]}
        assert af.wait_for_run(dag_id, runs[dag_id], timeout=RUN_TIMEOUT) == "success"


def test_reparse_is_deterministic_and_a_changed_plan_is_a_new_version(
    af: AirflowInstance, runs: dict[str, str], setup: Setup, e2e_timing
):
    # versions are only kept apart once a version has task instances: wait for the runs first
    for dag_id in (NIGHTLY, RETRY):
        assert af.wait_for_run(dag_id, runs[dag_id], timeout=RUN_TIMEOUT) == "success"
    assert [v["version_number"] for v in af.dag_versions(NIGHTLY)] == [1]
    assert [v["version_number"] for v in af.dag_versions(RETRY)] == [1]

    t0 = time.monotonic()
    _reparse_and_wait(af, {NIGHTLY: setup.dags / "nightly_plans.py", RETRY: setup.dags / "e2e_plans.py"})
    e2e_timing("force_reparse (unchanged) done", time.monotonic() - t0)
    assert [v["version_number"] for v in af.dag_versions(NIGHTLY)] == [1]
    assert [v["version_number"] for v in af.dag_versions(RETRY)] == [1]
    assert af.import_errors() == []

    # a real change of one plan's arguments is a new plan, hence a new DAG version
    plan_file = setup.dags / "plans" / f"{NIGHTLY}.json"
    document = json.loads(plan_file.read_text())
    report_step = next(s for s in document["steps"] if s["id"] == "write_revenue_report")
    report_step["args"]["title"] = "Revenue by region (second edition)"
    plan_file.write_text(json.dumps(document, indent=2))
    new_hash = load_plan_file(plan_file, orders.catalog).plan.hash
    t0 = time.monotonic()
    af.force_reparse(setup.dags / "nightly_plans.py")
    deadline = time.monotonic() + REPARSE_TIMEOUT
    while len(versions := af.dag_versions(NIGHTLY)) < 2:
        assert time.monotonic() < deadline, f"no new version after a plan change: {versions}"
        time.sleep(1.0)
    e2e_timing("force_reparse (changed) -> version 2", time.monotonic() - t0)
    assert [v["version_number"] for v in versions] == [1, 2]
    assert new_hash in af.get(f"/dags/{NIGHTLY}/details")["doc_md"]
    assert [v["version_number"] for v in af.dag_versions(RETRY)] == [1]  # other plans untouched


def test_backfill_gives_each_interval_its_own_data_with_no_model_call(
    af: AirflowInstance, runs: dict[str, str], setup: Setup, e2e_timing
):
    t0 = time.monotonic()
    body = {"dag_id": NIGHTLY, "from_date": "2026-11-10T00:00:00Z", "to_date": "2026-11-12T00:00:00Z"}
    backfill = af.post("/backfills", json={**body, "max_active_runs": 3})
    deadline = time.monotonic() + RUN_TIMEOUT
    while len(backfilled := [r for r in _runs_of(af, NIGHTLY) if r["run_type"] == "backfill"]) < 3:
        assert time.monotonic() < deadline, f"backfill {backfill['id']} made {len(backfilled)} runs"
        time.sleep(1.0)
    assert len(backfilled) == 3
    for run in backfilled:
        assert af.wait_for_run(NIGHTLY, run["dag_run_id"], timeout=RUN_TIMEOUT) == "success"
    e2e_timing("backfill of 3 nights", time.monotonic() - t0)

    days = sorted(_interval_days(af, NIGHTLY, r["dag_run_id"]) for r in backfilled)
    assert days == [("2026-11-10", "2026-11-10"), ("2026-11-11", "2026-11-11"), ("2026-11-12", "2026-11-12")]
    log = orders.query_log(setup.demo)
    plan_hashes = set()
    for run in backfilled:
        run_id = run["dag_run_id"]
        day = _interval_days(af, NIGHTLY, run_id)
        # the tool saw this run's interval, once, and the aggregate is that day's data
        assert [(q["start_date"], q["end_date"]) for q in log if q["run_id"] == run_id] == [day]
        with sqlite3.connect(setup.demo / "orders.db") as db:
            expected = _paid_revenue_by_region(db, *day)
        aggregate = af.xcom(NIGHTLY, run_id, "revenue_by_region")
        assert {g["key"]: g["revenue"] for g in aggregate["groups"]} == pytest.approx(expected)
        plan_hashes.add(af.xcom(NIGHTLY, run_id, "extract_orders", key=PROVENANCE_XCOM_KEY)["plan_hash"])
        # no model call: every task is a step, an undo or the saga's bookkeeping
        operators = {t["operator"] for t in af.task_instances(NIGHTLY, run_id)}
        assert operators <= {"PlanStepOperator", "SQLExecuteQueryOperator", "EmptyOperator"} | _SAGA_OPERATORS
    assert len(plan_hashes) == 1  # one plan, one hash, every night


def test_params_from_the_rest_api_reach_the_steps_and_a_bad_conf_is_refused(af: AirflowInstance, runs: dict[str, str]):
    with pytest.raises(AirflowApiError) as refused:
        af.trigger(REGIONAL, conf={"region": "mars"}, logical_date=NIGHTLY_DATE)
    assert refused.value.status_code == 400 and "'mars' is not one of" in str(refused.value)
    with pytest.raises(AirflowApiError) as negative:
        af.trigger(REGIONAL, conf={"min_order_value": -1}, logical_date=NIGHTLY_DATE)
    assert negative.value.status_code == 400

    run_id = af.trigger(REGIONAL, conf={"region": "amer", "min_order_value": 100}, logical_date=NIGHTLY_DATE)
    assert af.wait_for_run(REGIONAL, run_id, timeout=RUN_TIMEOUT) == "success"
    kept = af.xcom(REGIONAL, run_id, "regional_orders")
    everything = af.xcom(REGIONAL, run_id, "extract_orders")
    assert kept["count"] > 0 and {r["region"] for r in kept["rows"]} == {"amer"}
    assert all(r["quantity"] * r["unit_price"] >= 100 for r in kept["rows"])
    expected = [r for r in everything["rows"] if r["region"] == "amer" and r["quantity"] * r["unit_price"] >= 100]
    assert kept["rows"] == expected
    prov = af.xcom(REGIONAL, run_id, "regional_orders", key=PROVENANCE_XCOM_KEY)
    assert prov["run_values"] == {"params.min_order_value": 100, "params.region": "amer"}


def test_a_run_without_a_logical_date_fails_the_interval_step_and_keeps_the_rest(
    af: AirflowInstance, runs: dict[str, str], setup: Setup
):
    run_id = runs[INTERVAL]
    assert af.wait_for_run(INTERVAL, run_id, timeout=RUN_TIMEOUT) == "failed"
    assert af.dag_run(INTERVAL, run_id)["logical_date"] is None
    states = {t["task_id"]: (t["state"], t["try_number"]) for t in af.task_instances(INTERVAL, run_id)}
    assert states == {"fixed_day": ("success", 1), "run_interval": ("failed", 1)}  # no retry: it cannot help
    log = af.task_log(INTERVAL, run_id, "run_interval", try_number=1)
    assert "'run.data_interval_start_ds': this run has no logical date and no data interval" in log
    assert "Trigger it with a logical date" in log
    assert af.xcom(INTERVAL, run_id, "fixed_day")["count"] > 0  # the finished step's output stays
    assert [q for q in orders.query_log(setup.demo) if q["run_id"] == run_id and q["step_id"] == "run_interval"] == []


# ----------------------------------------------------------------------------- helpers

_SAGA_OPERATORS = {"CompensateStepOperator", "SagaOutcomeOperator"}


def _interval_days(af: AirflowInstance, dag_id: str, run_id: str) -> tuple[str, str]:
    """The first and last day of a run's data interval, from the REST API."""
    run = af.dag_run(dag_id, run_id)
    start = datetime.fromisoformat(run["data_interval_start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(run["data_interval_end"].replace("Z", "+00:00"))
    last = end - timedelta(microseconds=1) if end > start else start
    return start.date().isoformat(), last.date().isoformat()


def _import_tools(path: Path) -> ModuleType:
    """The test catalog, imported under the name Airflow gives it (its fingerprint names the module)."""
    spec = importlib.util.spec_from_file_location("e2e_tools", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["e2e_tools"] = module
    spec.loader.exec_module(module)
    return module


def _records(log_text: str, event: str) -> list[dict[str, Any]]:
    found = (parse_record(line) for line in log_text.splitlines())
    return [r for r in found if r is not None and r.get("event") == event]


def _paid_revenue_by_region(db: sqlite3.Connection, start: str, end: str) -> dict[str, float]:
    rows = db.execute(
        "SELECT COALESCE(region, 'unknown'), SUM(quantity * unit_price) FROM orders"
        " WHERE status = 'paid' AND order_date BETWEEN ? AND ? GROUP BY 1",
        (start, end),
    )
    return {region: round(revenue, 2) for region, revenue in rows}


def _runs_of(af: AirflowInstance, dag_id: str) -> list[dict[str, Any]]:
    return list(af.get(f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"])


def _parsed_at(af: AirflowInstance, dag_id: str) -> datetime:
    return datetime.fromisoformat(af.dag(dag_id)["last_parsed_time"].replace("Z", "+00:00"))


def _reparse_and_wait(af: AirflowInstance, files: dict[str, Path]) -> None:
    """Ask for a re-parse of each file; wait until the dag-processor stored a newer parse of each."""
    before = {dag_id: _parsed_at(af, dag_id) for dag_id in files}
    for path in files.values():
        af.force_reparse(path)
    deadline = time.monotonic() + REPARSE_TIMEOUT
    for dag_id in files:
        while _parsed_at(af, dag_id) <= before[dag_id]:
            assert time.monotonic() < deadline, f"{dag_id}: the dag-processor never re-parsed its file"
            time.sleep(1.0)
