"""The end-to-end core on the CeleryExecutor: one deployment with two workers, a private Redis and PostgreSQL.

A compiled plan (the example nightly plan, scheduled), an automation's approve -> run -> review
round and a saga run at once on two Celery workers (``w1`` and ``w2``, both on ``default``); then the
broker is stopped, runs are triggered while it is down, and it is started again: every run must
still reach success; last, a plan cached in Airflow Variables by one worker serves the next run on
the other. Each task instance records the worker that ran it in ``hostname``.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_claude.examples.orders import orders_connection_env
from airflow_claude.planner.cache import VARIABLE_PREFIX
from airflow_claude.testing import FakeClaude
from airflow_claude.testing.fake_claude import forced_tool_name
from tests.harness.airflow_instance import AirflowInstance
from tests.harness.celery import BROKER_OUTAGE_ENV
from tests.harness.postgres import fresh_database, postgres_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.celery,
    pytest.mark.skipif(not postgres_available(), reason="no PostgreSQL on 127.0.0.1:5432 (user postgres)"),
    pytest.mark.skipif(not shutil.which("redis-server"), reason="no redis-server on PATH"),
]
DAGS = Path(__file__).parent / "dags_celery"
MODEL = "claude-sonnet-5-5"
NIGHTLY = "nightly_orders_report"
NIGHTLY_STEPS = (
    "extract_orders", "check_orders", "revenue_by_region", "refresh_daily_summary", "write_revenue_report",
    "notify_team",
)  # fmt: skip


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """The offline Claude: a two-step plan (load, then summarize) and a 'done' review; a letter count to cache."""
    if forced_tool_name(body) == "submit_plan" and "Count the letters" in json.dumps(body):
        steps = [{"id": "count", "tool": "count_letters", "args": {"word": "airflow"}}]
        return {"tool_use": {"name": "submit_plan", "input": {"steps": steps}}}
    if forced_tool_name(body) == "submit_plan":
        steps = [
            {"id": "load", "tool": "load_source", "args": {"source": "orders"}},
            {
                "id": "summarize",
                "tool": "summarize_load",
                "depends_on": ["load"],
                "args": {"rows": {"$ref": "steps.load.output.rows"}},
            },
        ]
        return {"tool_use": {"name": "submit_plan", "input": {"steps": steps}}}
    verdict = {"verdict": "done", "reason": "all steps succeeded", "summary": "42 rows loaded"}
    return {"tool_use": {"name": "submit_review", "input": verdict}}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeClaude]:
    server = FakeClaude()
    server.responder = answer
    with server:
        yield server


@pytest.fixture(scope="module")
def airflow(fake: FakeClaude, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowInstance]:
    base = tmp_path_factory.mktemp("celery")
    conn = {"conn_type": "anthropic", "host": fake.url, "password": "e2e-key", "extra": {"model": MODEL}}
    env = {
        "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(conn),
        "AIRFLOW_CLAUDE_DEMO_DIR": str(base / "demo"),
        **orders_connection_env(base / "demo" / "orders.db"),
    }
    with fresh_database("celery_e2e") as db_url:
        instance = AirflowInstance(
            home=base / "home",
            dags_folder=DAGS,
            db_url=db_url,
            executor="celery",
            celery_workers={"w1": ("default",), "w2": ("default",)},
            with_triggerer=True,
            extra_env=env,
        )
        instance.start()
        try:
            yield instance
        finally:
            instance.stop()


@pytest.fixture(scope="module")
def runs(airflow: AirflowInstance) -> dict[str, str]:
    """The nightly plan's scheduled run (made when the DAG appears), an automation run and a saga, at once."""
    for dag_id in (NIGHTLY, "celery_auto", "saga_fails"):
        airflow.wait_for_dag(dag_id, timeout=120)
    ids = {
        "auto": airflow.trigger("celery_auto", conf={"goal": "Load the orders source and summarize it."}),
        "saga": airflow.trigger("saga_fails"),
        "nightly": scheduled_run(airflow, NIGHTLY),
    }
    airflow.answer_hitl("celery_auto", ids["auto"], "attempt_1.approve", ["Approve"], timeout=240)
    return ids


def scheduled_run(airflow: AirflowInstance, dag_id: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in airflow.get(f"/dags/{dag_id}/dagRuns")["dag_runs"] if r["run_type"] == "scheduled"]
        if found:
            return str(found[0]["dag_run_id"])
        time.sleep(1)
    raise AssertionError(f"no scheduled run of {dag_id} within {timeout}s")


def tis(airflow: AirflowInstance, dag_id: str, run_id: str) -> dict[tuple[str, int], dict[str, Any]]:
    return {(ti["task_id"], ti["map_index"]): ti for ti in airflow.task_instances(dag_id, run_id)}


def ran_on_workers(airflow: AirflowInstance, instances: dict[tuple[str, int], dict[str, Any]]) -> None:
    """Every task instance that ran did so on one of our Celery workers, from the ``default`` queue.

    Empty operators (the saga's ``steps_done``) are left out: the scheduler finishes them itself.
    """
    workers = {airflow.worker_hostname(w) for w in airflow.celery_worker_names}
    ran = {
        key: ti
        for key, ti in instances.items()
        if ti["state"] not in ("skipped", None) and ti["operator"] != "EmptyOperator"
    }
    assert ran
    assert {key: ti["hostname"] for key, ti in ran.items() if ti["hostname"] not in workers} == {}
    assert {ti["queue"] for ti in ran.values()} == {"default"}


def test_compiled_nightly_plan_runs_on_the_celery_workers(
    airflow: AirflowInstance, runs: dict[str, str], e2e_timing
) -> None:
    e2e_timing("celery deployment up (2 workers)", airflow.timings["start"])
    t0 = time.monotonic()
    state = airflow.wait_for_run(NIGHTLY, runs["nightly"], timeout=300)
    e2e_timing("nightly plan run (6 steps)", time.monotonic() - t0)
    instances = tis(airflow, NIGHTLY, runs["nightly"])
    assert state == "success", {k: v["state"] for k, v in instances.items()}
    assert {task for task, _ in instances} >= set(NIGHTLY_STEPS)
    assert all(instances[(step, -1)]["state"] == "success" for step in NIGHTLY_STEPS)
    ran_on_workers(airflow, instances)
    report = airflow.xcom(NIGHTLY, runs["nightly"], "write_revenue_report")
    assert Path(report["path"]).exists()


def test_automation_approve_run_review_on_celery(
    airflow: AirflowInstance, runs: dict[str, str], fake: FakeClaude, e2e_timing
) -> None:
    t0 = time.monotonic()
    state = airflow.wait_for_run("celery_auto", runs["auto"], timeout=300)
    e2e_timing("automation run after approval", time.monotonic() - t0)
    report = airflow.xcom("celery_auto", runs["auto"], "report", key="report")
    instances = tis(airflow, "celery_auto", runs["auto"])
    assert state == "success", (report.get("verdict"), report.get("reason"))
    assert report["status"] == "succeeded" and report["verdict"] == "done"
    load, summarize = instances[("attempt_1.steps", 0)], instances[("attempt_1.steps", 1)]
    assert (load["rendered_map_index"], load["state"]) == ("load", "success")
    assert (summarize["rendered_map_index"], summarize["state"]) == ("summarize", "success")
    assert airflow.xcom("celery_auto", runs["auto"], "attempt_1.steps", map_index=1) == {"summary": "42 rows"}
    assert [c["purpose"] for c in report["model_calls"]] == ["plan", "review"]
    assert report["rounds"][0]["approved_by"] is not None and report["rounds"][0]["auto_approved"] is False
    ran_on_workers(airflow, instances)


def test_saga_undoes_finished_mutating_steps_on_celery(airflow: AirflowInstance, runs: dict[str, str]) -> None:
    assert airflow.wait_for_run("saga_fails", runs["saga"], timeout=300) == "failed"
    instances = {task: ti for (task, _), ti in tis(airflow, "saga_fails", runs["saga"]).items()}
    assert instances["publish"]["state"] == "failed"
    assert instances["saga.undo_notify_team"]["state"] == "success"
    assert instances["saga.undo_write_revenue_report"]["state"] == "success"
    assert instances["saga.outcome"]["state"] == "failed"
    outcome = airflow.xcom("saga_fails", runs["saga"], "saga.outcome", key="outcome")
    assert outcome == {
        "plan_id": "saga_fails",
        "failed_steps": ["publish"],
        "status": "failed",
        "undone": ["notify_team", "write_revenue_report"],
        "not_undone": [],
    }
    written = airflow.xcom("saga_fails", runs["saga"], "write_revenue_report")
    assert not Path(written["path"]).exists()  # undone on whichever worker ran the undo
    ran_on_workers(airflow, {(t, -1): ti for t, ti in instances.items()})


def test_both_workers_took_tasks(airflow: AirflowInstance, runs: dict[str, str]) -> None:
    hostnames = set()
    for dag_id, run_id in ((NIGHTLY, runs["nightly"]), ("celery_auto", runs["auto"]), ("saga_fails", runs["saga"])):
        hostnames |= {ti["hostname"] for ti in tis(airflow, dag_id, run_id).values() if ti["hostname"]}
    assert hostnames == {airflow.worker_hostname("w1"), airflow.worker_hostname("w2")}


def test_runs_triggered_while_the_broker_is_down_wait_and_then_succeed(airflow: AirflowInstance, e2e_timing) -> None:
    """With the harness's ``BROKER_OUTAGE_ENV`` the unsent tasks stay queued; without it they fail (a try each)."""
    assert BROKER_OUTAGE_ENV.items() <= airflow.env.items()
    airflow.wait_for_dag("celery_small", timeout=120)
    airflow.stop_component("redis")
    t0 = time.monotonic()
    run_ids = [airflow.trigger("celery_small") for _ in range(3)]
    time.sleep(10)
    during = {run_id: airflow.dag_run("celery_small", run_id)["state"] for run_id in run_ids}
    airflow.start_component("redis", timeout=30)
    states = {run_id: airflow.wait_for_run("celery_small", run_id, timeout=240) for run_id in run_ids}
    e2e_timing("3 runs, broker down 10 s", time.monotonic() - t0)
    listed = {r["dag_run_id"] for r in airflow.get("/dags/celery_small/dagRuns")["dag_runs"]}
    tries = {
        run_id: {
            task: (ti["state"], ti["try_number"]) for (task, _), ti in tis(airflow, "celery_small", run_id).items()
        }
        for run_id in run_ids
    }
    assert set(during.values()) <= {"queued", "running"}, during
    assert set(run_ids) <= listed  # none lost
    assert set(states.values()) == {"success"}, (states, tries, scheduler_lines(airflow))
    # no try was spent on the outage: each step ran once, after the broker came back
    assert {run_id: {t for t, (_, n) in steps.items() if n != 1} for run_id, steps in tries.items()} == {
        run_id: set() for run_id in run_ids
    }, tries


def scheduler_lines(airflow: AirflowInstance, pattern: str = r"celery|Celery|queued|Queued") -> list[str]:
    """Scheduler log lines about sending to Celery, for a failure message."""
    text = airflow.log_path("scheduler").read_text(errors="replace")
    return [line[:300] for line in text.splitlines() if re.search(pattern, line)][-30:]


# The plan cache in Airflow Variables, shared by the two workers (last: it stops a worker). Run 1
# plans (one model call) on whichever worker takes its plan task and stores the plan in a Variable;
# that worker is then stopped, so run 2's plan task runs on the other one, which must find the plan
# in the metadata database: no model call, the same plan hash. No folder plays any part.
CACHE_DAG = "cache_nightly"


def cached_run_to_success(airflow: AirflowInstance, run_id: str) -> dict[str, Any]:
    state = airflow.wait_for_run(CACHE_DAG, run_id, timeout=300)
    report = airflow.xcom(CACHE_DAG, run_id, "report", key="report")
    assert state == "success", (report.get("verdict"), report.get("reason"))
    return report


def worker_of(airflow: AirflowInstance, run_id: str, task_id: str) -> str:
    hostname = airflow.task_instance(CACHE_DAG, run_id, task_id)["hostname"]
    by_host = {airflow.worker_hostname(name): name for name in airflow.celery_worker_names}
    assert hostname in by_host, (hostname, by_host)
    return by_host[hostname]


def plan_variables(airflow: AirflowInstance) -> dict[str, str]:
    found = airflow.get("/variables", params={"variable_key_pattern": VARIABLE_PREFIX, "limit": 100})
    return {v["key"]: v["value"] for v in found["variables"] if v["key"].startswith(VARIABLE_PREFIX)}


def test_a_plan_cached_by_one_worker_serves_the_next_run_on_the_other(
    airflow: AirflowInstance, fake: FakeClaude
) -> None:
    airflow.wait_for_dag(CACHE_DAG, timeout=120)
    first = airflow.trigger(CACHE_DAG)
    report = cached_run_to_success(airflow, first)
    assert [c["purpose"] for c in report["model_calls"]] == ["plan"]
    assert airflow.xcom(CACHE_DAG, first, "attempt_1.plan")["cached"] is False
    stored = plan_variables(airflow)
    assert len(stored) == 1, sorted(stored)
    [entry] = stored.values()
    assert json.loads(entry)["plan"]["steps"][0]["tool"] == "count_letters"
    planner = worker_of(airflow, first, "attempt_1.plan")
    calls_before = len(fake.message_requests())

    airflow.stop_component(f"worker-{planner}")  # the next plan task can only run on the other worker
    second = airflow.trigger(CACHE_DAG)
    again = cached_run_to_success(airflow, second)
    assert worker_of(airflow, second, "attempt_1.plan") != planner
    assert airflow.xcom(CACHE_DAG, second, "attempt_1.plan")["cached"] is True
    assert again["model_calls"] == [] and len(fake.message_requests()) == calls_before
    assert again["rounds"][0]["plan_hash"] == report["rounds"][0]["plan_hash"]
    assert len(plan_variables(airflow)) == 1
