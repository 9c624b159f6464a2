"""The load suite's deployment: a DAG folder of its own, the offline Claude, the Celery settings, the sizes.

The Airflow itself (scheduler, dag-processor, api-server, triggerer, two Celery workers, a private
Redis, PostgreSQL) is the test harness's ``AirflowInstance(executor="celery")``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_claude.testing import FakeClaude
from airflow_claude.testing.fake_claude import forced_tool_name

from . import effects, plan

DAGS = Path(__file__).parent / "dags"
MODEL = "claude-sonnet-5-5"
GOAL = "Report last month's revenue per region and in all, tell the team and publish the dashboard."


@dataclass(frozen=True)
class Size:
    """How big a load run is, and what the machine is allowed to run at once."""

    compiled_runs: int = 6
    automation_runs: int = 2
    parallelism: int = 8  # [core] parallelism: task instances running at once, all workers together
    worker_concurrency: int = 4  # task slots per Celery worker (two workers)

    @property
    def runs(self) -> int:
        return self.compiled_runs + self.automation_runs


def write_dag_folder(folder: Path) -> Path:
    """Copy the suite's DAG files and write the compiled 20-step plan next to them."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in DAGS.glob("*.py"):
        shutil.copy(source, folder / source.name)
    (folder / ".airflowignore").write_text("load_tools.py\n")  # a module of the DAG files, not one itself
    plan.write_plan(folder / "plans")
    return folder


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """The offline Claude: the 20 steps for any planning request, ``done`` for any review."""
    if forced_tool_name(body) == "submit_plan":
        summary = "Read, check and sum each region's orders, write the reports, tell the team, publish."
        return {"tool_use": {"name": "submit_plan", "input": {"summary": summary, "steps": plan.steps()}}}
    verdict = {"verdict": "done", "reason": "every step succeeded", "summary": "the reports are written"}
    return {"tool_use": {"name": "submit_review", "input": verdict}}


def claude() -> FakeClaude:
    fake = FakeClaude()
    fake.responder = answer
    return fake


def airflow_env(size: Size, claude_url: str, effects_dsn: str) -> dict[str, str]:
    """Settings of the load deployment (on top of the harness's): many runs at once, bounded task slots."""
    conn = {"conn_type": "anthropic", "host": claude_url, "password": "load-key", "extra": {"model": MODEL}}
    return {
        "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(conn),
        effects.DSN_ENV: effects_dsn,
        "AIRFLOW__CORE__PARALLELISM": str(size.parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": "512",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "1024",
        # a busy 2-CPU machine can take long to parse a DAG file: never mistake that for a failure
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "180",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "240",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",  # the files never change during a run
        # a starved scheduler loop must not declare itself dead and reset its own tasks
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "120",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "300",
    }
