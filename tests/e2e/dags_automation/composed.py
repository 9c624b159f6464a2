"""A user's own DAG with an automation in the middle: upstream writes the goal, downstream reads the report."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, task
from auto_tools import catalog

from airflow_claude.automation import AutomationSettings, claude_automation_group
from airflow_claude.planner import CallPolicy

with DAG(dag_id="auto_composed", schedule=None, catchup=False, tags=["e2e"]):

    @task
    def write_goal(dag_run: Any = None) -> str:
        source = (dag_run.conf or {}).get("source", "good") if dag_run else "good"
        return f"[composed] Load the {source} source and summarize it."

    automation = claude_automation_group(
        "orders_auto",
        catalog=catalog,
        goal=write_goal(),
        settings=AutomationSettings(max_steps=4, require_approval=False, max_replans=0),
        call_policy=CallPolicy(attempts=2, retry_after_cap=2.0, base_backoff=0.2, timeout=30.0),
    )

    @task
    def load_report(report: dict[str, Any]) -> dict[str, Any]:
        return {"status": report["status"], "automation": report["automation_id"], "goal": report["goal"]}

    load_report(automation.report)
