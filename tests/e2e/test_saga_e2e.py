"""Compensation through a real scheduler: a failed run undoes its finished mutating steps, in reverse order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from airflow_claude.examples.orders import orders_connection_env
from tests.harness.airflow_instance import AirflowInstance

pytestmark = pytest.mark.e2e
DAGS = Path(__file__).parent / "dags_saga"


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AirflowInstance, Path]]:
    base = tmp_path_factory.mktemp("saga")
    demo = base / "demo"
    env = {"AIRFLOW_CLAUDE_DEMO_DIR": str(demo), **orders_connection_env(demo / "orders.db")}
    instance = AirflowInstance(home=base / "home", dags_folder=DAGS, extra_env=env)
    instance.start()
    try:
        yield instance, demo
    finally:
        instance.stop()


def states(airflow: AirflowInstance, dag_id: str, run_id: str) -> dict[str, dict]:
    return {ti["task_id"]: ti for ti in airflow.task_instances(dag_id, run_id)}


def test_failed_run_undoes_finished_mutating_steps_in_reverse_order(airflow: tuple[AirflowInstance, Path]) -> None:
    instance, demo = airflow
    instance.wait_for_dag("saga_fails", timeout=120)
    run_id = instance.trigger("saga_fails")
    assert instance.wait_for_run("saga_fails", run_id, timeout=300) == "failed"
    tis = states(instance, "saga_fails", run_id)
    assert tis["publish"]["state"] == "failed" and tis["publish"]["try_number"] == 1
    assert tis["saga.undo_notify_team"]["state"] == "success"
    assert tis["saga.undo_write_revenue_report"]["state"] == "success"
    assert tis["saga.outcome"]["state"] == "failed"
    notify_undone = datetime.fromisoformat(tis["saga.undo_notify_team"]["end_date"])
    report_undo_started = datetime.fromisoformat(tis["saga.undo_write_revenue_report"]["start_date"])
    assert notify_undone <= report_undo_started  # the later effect is undone first
    outcome = instance.xcom("saga_fails", run_id, "saga.outcome", key="outcome")
    assert outcome == {
        "plan_id": "saga_fails",
        "failed_steps": ["publish"],
        "status": "failed",
        "undone": ["notify_team", "write_revenue_report"],
        "not_undone": [],
    }
    written = instance.xcom("saga_fails", run_id, "write_revenue_report")
    assert not Path(written["path"]).exists()  # the report file was deleted
    sent = instance.xcom("saga_fails", run_id, "notify_team")
    outbox = [json.loads(line) for line in (demo / "outbox.jsonl").read_text().splitlines()]
    retractions = [entry for entry in outbox if entry.get("retracts") == sent["id"]]
    assert len(retractions) == 1 and retractions[0]["channel"] == "#data-team"
    undo = instance.xcom("saga_fails", run_id, "saga.undo_write_revenue_report")
    assert undo["undone"] == "write_revenue_report" and undo["result"]["deleted"] is True


def test_successful_run_skips_every_compensation(airflow: tuple[AirflowInstance, Path]) -> None:
    instance, _ = airflow
    instance.wait_for_dag("saga_succeeds", timeout=120)
    run_id = instance.trigger("saga_succeeds")
    assert instance.wait_for_run("saga_succeeds", run_id, timeout=300) == "success"
    tis = states(instance, "saga_succeeds", run_id)
    assert tis["saga.undo_notify_team"]["state"] == "skipped"
    assert tis["saga.undo_write_revenue_report"]["state"] == "skipped"
    assert tis["saga.outcome"]["state"] == "success"
    written = instance.xcom("saga_succeeds", run_id, "write_revenue_report")
    assert Path(written["path"]).exists()
