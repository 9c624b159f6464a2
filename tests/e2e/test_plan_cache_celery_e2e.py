"""The plan cache in Airflow Variables, through a real CeleryExecutor deployment with two workers.

Run 1 plans (one model call) on whichever worker takes its plan task and stores the plan in a
Variable; that worker is then stopped, so run 2's plan task runs on the other worker, which must
find the plan in the metadata database: no model call, the same plan hash. Nothing is written to
a folder, so a disk the two workers happen to share on this machine plays no part.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_claude.planner.cache import VARIABLE_PREFIX
from airflow_claude.testing import FakeClaude
from airflow_claude.testing.fake_claude import forced_tool_name
from tests.harness.airflow_instance import AirflowInstance
from tests.harness.postgres import fresh_database, postgres_available

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not postgres_available(), reason="needs PostgreSQL on 127.0.0.1:5432"),
]
DAGS = Path(__file__).parent / "dags_plan_cache"
DAG_ID = "cache_nightly"


def answer(body: dict[str, Any]) -> dict[str, Any]:
    assert forced_tool_name(body) == "submit_plan", "review='on_failure': a good run asks for no review"
    steps = [{"id": "count", "tool": "count_letters", "args": {"word": "airflow"}}]
    return {"tool_use": {"name": "submit_plan", "input": {"steps": steps}}}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeClaude]:
    server = FakeClaude()
    server.responder = answer
    with server:
        yield server


@pytest.fixture(scope="module")
def airflow(fake: FakeClaude, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowInstance]:
    base = tmp_path_factory.mktemp("plan_cache_celery")
    conn = {"conn_type": "anthropic", "host": fake.url, "password": "e2e-key", "extra": {"model": "claude-e2e"}}
    with fresh_database("plan_cache") as db_url:
        instance = AirflowInstance(
            home=base / "home",
            dags_folder=DAGS,
            db_url=db_url,
            executor="celery",
            celery_workers={"w1": ("default",), "w2": ("default",)},
            with_triggerer=True,
            extra_env={"AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(conn)},
            startup_timeout=240,
        )
        instance.start()
        try:
            instance.wait_for_dag(DAG_ID, timeout=120)
            instance.unpause(DAG_ID)
            yield instance
        finally:
            instance.stop()


def run_to_success(airflow: AirflowInstance, run_id: str) -> dict[str, Any]:
    state = airflow.wait_for_run(DAG_ID, run_id, timeout=300)
    report = airflow.xcom(DAG_ID, run_id, "report", key="report")
    assert state == "success", (report.get("verdict"), report.get("reason"))
    return report


def worker_of(airflow: AirflowInstance, run_id: str, task_id: str) -> str:
    hostname = airflow.task_instance(DAG_ID, run_id, task_id)["hostname"]
    by_host = {airflow.worker_hostname(name): name for name in airflow.celery_worker_names}
    assert hostname in by_host, (hostname, by_host)
    return by_host[hostname]


def plan_variables(airflow: AirflowInstance) -> dict[str, str]:
    found = airflow.get("/variables", params={"variable_key_pattern": VARIABLE_PREFIX, "limit": 100})
    return {v["key"]: v["value"] for v in found["variables"] if v["key"].startswith(VARIABLE_PREFIX)}


def test_a_plan_cached_by_one_worker_serves_the_next_run_on_the_other(
    airflow: AirflowInstance, fake: FakeClaude
) -> None:
    first = airflow.trigger(DAG_ID)
    report = run_to_success(airflow, first)
    assert [c["purpose"] for c in report["model_calls"]] == ["plan"]
    assert airflow.xcom(DAG_ID, first, "attempt_1.plan")["cached"] is False
    stored = plan_variables(airflow)
    assert len(stored) == 1, sorted(stored)
    [entry] = stored.values()
    assert json.loads(entry)["plan"]["steps"][0]["tool"] == "count_letters"
    planner = worker_of(airflow, first, "attempt_1.plan")
    calls_before = len(fake.message_requests())

    airflow.stop_component(f"worker-{planner}")  # the next plan task can only run on the other worker
    second = airflow.trigger(DAG_ID)
    again = run_to_success(airflow, second)
    assert worker_of(airflow, second, "attempt_1.plan") != planner
    assert airflow.xcom(DAG_ID, second, "attempt_1.plan")["cached"] is True
    assert again["model_calls"] == [] and len(fake.message_requests()) == calls_before
    assert again["rounds"][0]["plan_hash"] == report["rounds"][0]["plan_hash"]
    assert len(plan_variables(airflow)) == 1
