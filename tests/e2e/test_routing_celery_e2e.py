"""Per-tool routing on a real CeleryExecutor: two workers on different queues, a third queue nobody serves.

``w1`` listens on ``default`` and ``w2`` on ``warehouse``. The warehouse tools (``load_warehouse`` and its
compensation) must run on ``w2`` only, in a compiled plan and in a run-time plan (where they get a mapped
task of their own); every other step on ``w1``. A tool on the queue ``nowhere`` leaves its step queued;
the step's task doc, the route task's log and the run report say which queue.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_claude.testing import FakeClaude
from airflow_claude.testing.fake_claude import forced_tool_name
from tests.harness.airflow_instance import AirflowInstance
from tests.harness.postgres import fresh_database, postgres_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.celery,
    pytest.mark.skipif(not postgres_available(), reason="no PostgreSQL on 127.0.0.1:5432 (user postgres)"),
    pytest.mark.skipif(not shutil.which("redis-server"), reason="no redis-server on PATH"),
]
DAGS = Path(__file__).parent / "dags_routing"
#: a step queued longer than this with no worker taking it is failed at once (no re-queue): the report then says where
QUEUED_TIMEOUT = 45


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """Plans: extract -> load (warehouse) -> announce; with STRAY in the goal, a render on the 'nowhere' queue."""
    if forced_tool_name(body) == "submit_plan":
        steps: list[dict[str, Any]] = [
            {"id": "extract", "tool": "extract", "args": {"rows": 5}},
            {
                "id": "load",
                "tool": "load_warehouse",
                "args": {"rows": {"$ref": "steps.extract.output.rows"}},
                "depends_on": ["extract"],
            },
            {
                "id": "announce",
                "tool": "announce",
                "args": {"rows": {"$ref": "steps.load.output.rows"}},
                "depends_on": ["load"],
            },
        ]
        if "STRAY" in json.dumps(body):
            steps = [*steps[:1], {"id": "render", "tool": "render_on_gpu", "args": {"rows": 1}}]
        return {"tool_use": {"name": "submit_plan", "input": {"steps": steps}}}
    verdict = {"verdict": "escalate", "reason": "a step never ran", "summary": "render did not run"}
    return {"tool_use": {"name": "submit_review", "input": verdict}}


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowInstance]:
    base = tmp_path_factory.mktemp("routing")
    fake = FakeClaude()
    fake.responder = answer
    with fake, fresh_database("routing_e2e") as db_url:
        conn = {"conn_type": "anthropic", "host": fake.url, "password": "e2e-key", "extra": {"model": "claude-e2e"}}
        instance = AirflowInstance(
            home=base / "home",
            dags_folder=DAGS,
            db_url=db_url,
            executor="celery",
            celery_workers={"w1": ("default",), "w2": ("warehouse",)},
            with_triggerer=True,
            extra_env={
                "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(conn),
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": str(QUEUED_TIMEOUT),
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "5",
                "AIRFLOW__SCHEDULER__NUM_STUCK_IN_QUEUED_RETRIES": "0",
            },
        )
        instance.start()
        try:
            yield instance
        finally:
            instance.stop()


@pytest.fixture(scope="module")
def runs(airflow: AirflowInstance) -> dict[str, str]:
    for dag_id in ("routed_plan", "stray_plan", "routed_auto", "stray_auto"):
        airflow.wait_for_dag(dag_id, timeout=120)
    return {
        "stray_auto": airflow.trigger("stray_auto", conf={"goal": "STRAY: extract, then render a chart."}),
        "stray_plan": airflow.trigger("stray_plan"),
        "routed_plan": airflow.trigger("routed_plan"),
        "routed_auto": airflow.trigger("routed_auto", conf={"goal": "Load the rows into the warehouse."}),
    }


def instances(airflow: AirflowInstance, dag_id: str, run_id: str) -> dict[tuple[str, int], dict[str, Any]]:
    return {(ti["task_id"], ti["map_index"]): ti for ti in airflow.task_instances(dag_id, run_id)}


def where(airflow: AirflowInstance, ti: dict[str, Any]) -> tuple[str, str]:
    """(queue, worker name) of a task instance that ran."""
    names = {airflow.worker_hostname(w): w for w in airflow.celery_worker_names}
    return ti["queue"], names.get(ti["hostname"], ti["hostname"])


def test_a_compiled_step_on_a_queue_nobody_serves_stays_queued_and_says_where(
    airflow: AirflowInstance, runs: dict[str, str]
) -> None:
    render = airflow.wait_for_task_state("stray_plan", runs["stray_plan"], "render", ["queued"], timeout=180)
    assert render["queue"] == "nowhere" and not render["hostname"]
    doc = airflow.get("/dags/stray_plan/tasks/render").get("doc_md") or ""
    assert "queue 'nowhere'" in doc
    time.sleep(5)  # still there: nobody listens on 'nowhere' (the queued timeout fails it later)
    assert airflow.task_instance("stray_plan", runs["stray_plan"], "render")["state"] == "queued"


def test_a_compiled_plans_warehouse_step_runs_on_the_warehouse_worker(
    airflow: AirflowInstance, runs: dict[str, str]
) -> None:
    assert airflow.wait_for_run("routed_plan", runs["routed_plan"], timeout=240) == "success"
    tis = instances(airflow, "routed_plan", runs["routed_plan"])
    assert where(airflow, tis[("load", -1)]) == ("warehouse", "w2")
    assert where(airflow, tis[("extract", -1)]) == ("default", "w1")
    assert where(airflow, tis[("announce", -1)]) == ("default", "w1")
    assert airflow.xcom("routed_plan", runs["routed_plan"], "announce") == {"message": "42 rows loaded"}


def test_a_run_time_plans_warehouse_step_gets_its_own_mapped_task_on_the_warehouse_worker(
    airflow: AirflowInstance, runs: dict[str, str]
) -> None:
    assert airflow.wait_for_run("routed_auto", runs["routed_auto"], timeout=300) == "success"
    tis = instances(airflow, "routed_auto", runs["routed_auto"])
    load = tis[("attempt_1.steps_warehouse", 0)]
    assert (load["rendered_map_index"], load["state"]) == ("load", "success")
    assert where(airflow, load) == ("warehouse", "w2")
    for index, step_id in enumerate(("extract", "announce")):
        ti = tis[("attempt_1.steps", index)]
        assert (ti["rendered_map_index"], ti["state"]) == (step_id, "success")
        assert where(airflow, ti) == ("default", "w1")
    # announce (default queue) read the output of load (warehouse queue)
    assert airflow.xcom("routed_auto", runs["routed_auto"], "attempt_1.steps", map_index=1) == {
        "message": "5 rows loaded"
    }
    report = airflow.xcom("routed_auto", runs["routed_auto"], "report", key="report")
    steps = {s["id"]: s for s in report["rounds"][0]["steps"]}
    assert steps["load"]["queue"] == "warehouse" and steps["load"]["status"] == "success"
    assert "queue" not in steps["extract"]


def test_a_run_time_step_on_a_queue_nobody_serves_is_named_in_the_log_and_the_report(
    airflow: AirflowInstance, runs: dict[str, str]
) -> None:
    run_id = runs["stray_auto"]
    airflow.wait_for_task_state("stray_auto", run_id, "attempt_1.route_nowhere", ["success"], timeout=240)
    log = airflow.task_log("stray_auto", run_id, "attempt_1.route_nowhere", 1)
    assert "go to queue 'nowhere': render" in log
    # queued, or already failed by the queued timeout if the other tests took long: either way it never ran
    render = airflow.wait_for_task_state(
        "stray_auto", run_id, "attempt_1.steps_nowhere", ["queued", "failed"], map_index=0
    )
    assert render["queue"] == "nowhere" and not render["hostname"]
    # no worker takes it: after the queued timeout Airflow fails it, the review and the report name the queue
    assert airflow.wait_for_run("stray_auto", run_id, timeout=QUEUED_TIMEOUT + 180) == "failed"
    report = airflow.xcom("stray_auto", run_id, "report", key="report")
    steps = {s["id"]: s for s in report["rounds"][0]["steps"]}
    assert steps["render"]["queue"] == "nowhere" and steps["render"]["status"] == "not_run"
    assert "queue 'nowhere'" in steps["render"]["error"]
    assert steps["extract"]["status"] == "success" and "queue" not in steps["extract"]
