"""Scheduled automations bound to their run, through a real Airflow and the demo's offline Claude.

The DAG folder is a copy of the repo's ``dags/`` (the example automation ``orders_nightly_review``:
a relative goal, plan cache, ``review="on_failure"``) plus ``orders_nightly_always``, the same
automation reviewed every night. Each is unpaused (the scheduler starts last night's run), then
three earlier nights are backfilled. Claude plans once per automation, with run references; every
night reads its own interval; N good nights cost one model call with ``on_failure``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_claude.automation.memory import memory_key
from airflow_claude.examples import orders
from airflow_claude.testing import FakeClaude
from tests.harness.airflow_instance import AirflowInstance

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
ON_FAILURE = "orders_nightly_review"
ALWAYS = "orders_nightly_always"
ALWAYS_GOAL = "Check yesterday's paid orders and review every night: report revenue by region, tell #data-team."
RUN_TIMEOUT = 600.0
EXTRA_DAG = f'''
"""A DAG file: the nightly automation reviewed every night (Airflow's safe mode looks for "dag")."""
import os
from decimal import Decimal

from airflow_claude.automation import AutomationSettings, claude_automation
from airflow_claude.examples.orders import catalog

orders_nightly_always = claude_automation(
    "{ALWAYS}",
    catalog=catalog,
    goal="{ALWAYS_GOAL}",
    schedule="0 0 * * *",
    settings=AutomationSettings(
        max_steps=8,
        require_approval=False,
        budget_usd=Decimal("0.50"),
        plan_cache=os.path.join(os.environ["AIRFLOW_HOME"], "always_plan_cache"),
    ),
)
'''


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeClaude]:
    server = FakeClaude()
    server.load_script(REPO / "airflow_claude" / "examples" / "demo_claude.json")
    with server:
        yield server


@pytest.fixture(scope="module")
def setup(fake: FakeClaude, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AirflowInstance, Path]]:
    base = tmp_path_factory.mktemp("run_context")
    dags = base / "dags"
    shutil.copytree(REPO / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    (dags / "nightly_always.py").write_text(EXTRA_DAG)
    demo = base / "demo"
    demo.mkdir()
    conn = {"conn_type": "anthropic", "host": fake.url, "password": "e2e-key"}
    env = {
        "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(conn),
        "AIRFLOW_CLAUDE_DEMO_DIR": str(demo),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        # known files are re-parsed only on request, so DAG versions are observable
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        **orders.orders_connection_env(demo / "orders.db"),
    }
    instance = AirflowInstance(home=base / "home", dags_folder=dags, extra_env=env, with_triggerer=True)
    instance.start()
    try:
        yield instance, demo
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def nights(setup: tuple[AirflowInstance, Path]) -> dict[str, list[str]]:
    """Last night's scheduled run of each automation, then a backfill of the three nights before."""
    af, _ = setup
    for dag_id in (ON_FAILURE, ALWAYS):
        af.wait_for_dag(dag_id, timeout=180)
        af.unpause(dag_id)
    first = {dag_id: _wait_for_runs(af, dag_id, "scheduled", 1) for dag_id in (ON_FAILURE, ALWAYS)}
    for dag_id, runs in first.items():
        assert af.wait_for_run(dag_id, runs[0], timeout=RUN_TIMEOUT) == "success", _tasks(af, dag_id, runs[0])
    today = datetime.now(UTC).date()
    for dag_id in (ON_FAILURE, ALWAYS):
        af.post(
            "/backfills",
            json={
                "dag_id": dag_id,
                "from_date": f"{today - timedelta(days=4)}T00:00:00Z",
                "to_date": f"{today - timedelta(days=2)}T00:00:00Z",
                "max_active_runs": 1,  # night after night, as a schedule would
            },
        )
    result = {}
    for dag_id in (ON_FAILURE, ALWAYS):
        backfilled = _wait_for_runs(af, dag_id, "backfill", 3)
        for run_id in backfilled:
            assert af.wait_for_run(dag_id, run_id, timeout=RUN_TIMEOUT) == "success", _tasks(af, dag_id, run_id)
        result[dag_id] = first[dag_id] + backfilled
    return result


def test_one_planning_call_serves_every_night_each_with_its_own_interval(
    setup: tuple[AirflowInstance, Path], nights: dict[str, list[str]], fake: FakeClaude
) -> None:
    af, demo = setup
    plans = [r for r in fake.message_requests() if _forced_tool(r.body) == "submit_plan"]
    reviews = [r for r in fake.message_requests() if _forced_tool(r.body) == "submit_review"]
    by_goal = {ON_FAILURE: "Check yesterday's paid orders for data-quality", ALWAYS: ALWAYS_GOAL}
    for dag_id, goal in by_goal.items():
        assert len([r for r in plans if goal in r.text]) == 1, dag_id  # night one; every later night is cached
    assert [r for r in reviews if by_goal[ON_FAILURE] in r.text] == []  # on_failure: good nights are not reviewed
    assert len([r for r in reviews if ALWAYS_GOAL in r.text]) == 4

    # Claude was told the first night's interval, in the user turn only
    first_interval = af.dag_run(ON_FAILURE, nights[ON_FAILURE][0])["data_interval_start"]
    planning = next(r for r in plans if by_goal[ON_FAILURE] in r.text)
    user_turn = json.dumps(planning.body["messages"])
    assert "<run>" in user_turn and first_interval.replace("Z", "+00:00") in user_turn
    assert first_interval[:10] not in json.dumps(planning.body["system"])

    log = orders.query_log(demo)
    for dag_id, run_ids in nights.items():
        days, hashes = [], set()
        for number, run_id in enumerate(run_ids):
            day = af.dag_run(dag_id, run_id)["data_interval_start"][:10]
            days.append(day)
            # the run's tool call read its own interval: one day, the day before the run
            assert [
                (q["start_date"], q["end_date"]) for q in log if q["run_id"] == run_id and q["dag_id"] == dag_id
            ] == [(day, day)], (dag_id, run_id)
            report = af.xcom(dag_id, run_id, "report", key="report")
            assert report["status"] == "succeeded", (report["verdict"], report["reason"])
            assert report["run"]["data_interval_start"].startswith(day)
            assert len(report["model_calls"]) == (0 if dag_id == ON_FAILURE else 1) + (1 if number == 0 else 0)
            assert af.xcom(dag_id, run_id, "attempt_1.plan")["cached"] is (number > 0)
            hashes.add(report["rounds"][0]["plan_hash"])
            steps = report["rounds"][0]["steps"]
            extract = next(s for s in steps if s["tool"] == "query_orders")
            assert extract["run_values"] == {"run.data_interval_last_ds": day, "run.data_interval_start_ds": day}
        assert len(set(days)) == 4, days  # four different nights
        assert len(hashes) == 1  # one plan for all of them

        memory = json.loads(af.get(f"/variables/{memory_key(dag_id)}")["value"])
        assert sorted(e["data_interval_start"][:10] for e in memory) == sorted(days)


def test_an_automation_reparsed_keeps_one_dag_version(
    setup: tuple[AirflowInstance, Path], nights: dict[str, list[str]]
) -> None:
    af, _ = setup
    automations = (ON_FAILURE, "orders_assistant")
    for dag_id in automations:
        assert [v["version_number"] for v in af.dag_versions(dag_id)] == [1]
    path = af.dag(ON_FAILURE)["fileloc"]
    for _ in range(3):
        before = af.dag(ON_FAILURE)["last_parsed_time"]
        af.force_reparse(path)
        deadline = time.monotonic() + 90
        while af.dag(ON_FAILURE)["last_parsed_time"] == before:
            assert time.monotonic() < deadline, "the dag-processor never re-parsed the automation file"
            time.sleep(1.0)
    for dag_id in (*automations, ALWAYS):
        assert [v["version_number"] for v in af.dag_versions(dag_id)] == [1], dag_id


def _forced_tool(body: Any) -> str | None:
    choice = body.get("tool_choice") if isinstance(body, dict) else None
    return choice.get("name") if isinstance(choice, dict) else None


def _wait_for_runs(af: AirflowInstance, dag_id: str, run_type: str, count: int, timeout: float = 180) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        runs = [r for r in af.get(f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]]
        found = sorted((r["logical_date"], r["dag_run_id"]) for r in runs if r["run_type"] == run_type)
        if len(found) >= count:
            return [run_id for _, run_id in found]
        assert time.monotonic() < deadline, f"{dag_id}: {len(found)} {run_type} runs, wanted {count}"
        time.sleep(2.0)


def _tasks(af: AirflowInstance, dag_id: str, run_id: str) -> list[tuple[str, int, str]]:
    return [(t["task_id"], t["map_index"], t["state"]) for t in af.task_instances(dag_id, run_id)]
