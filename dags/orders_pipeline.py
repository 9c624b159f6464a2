"""An automation inside a DAG of your own: a task before it writes the goal, a task after it uses the report.

``orders_pipeline``: ``choose_goal`` turns the trigger form's region into a goal; the task group
``claude`` plans it, runs each step as its own task instance and reviews the outcome (approval
off); ``publish_summary`` reads the run report and keeps one line per run. The automation's tasks
are ordinary Airflow tasks of this DAG, so anything can run before or after them.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_claude.automation import AutomationSettings, claude_automation_group
from airflow_claude.examples.orders import catalog, demo_dir
from airflow_claude.factory.build import DEFAULT_START_DATE

with DAG(
    dag_id="orders_pipeline",
    schedule=None,
    start_date=DEFAULT_START_DATE,
    catchup=False,
    params={"region": Param("EU", type="string", enum=["EU", "US", "APAC"], title="Region to focus on")},
    tags=["airflow-claude", "example"],
    doc_md=__doc__,
):

    @task
    def choose_goal(params: dict[str, Any] | None = None) -> str:
        """The goal of this run, from the form (an upstream task could read a table or an API instead)."""
        region = (params or {}).get("region", "EU")
        return f"Report paid orders revenue by region, with a close look at {region}, and tell #data-team."

    automation = claude_automation_group(
        "claude",
        catalog=catalog,
        goal=choose_goal(),
        settings=AutomationSettings(max_steps=10, require_approval=False, budget_usd=Decimal("0.50")),
    )

    @task
    def publish_summary(report: dict[str, Any]) -> dict[str, Any]:
        """Keep one line per run: what ran, its verdict and its cost (a real DAG would load it somewhere)."""
        line = {
            "run_id": report["run_id"],
            "status": report["status"],
            "plans": report["version_chain"],
            "steps": [s["id"] for r in report["rounds"] for s in r.get("steps", [])],
            "cost_usd": report["cost_usd"],
        }
        with (demo_dir() / "pipeline_summaries.jsonl").open("a", encoding="utf-8") as out:
            out.write(json.dumps(line, sort_keys=True) + "\n")
        return line

    publish_summary(automation.report)
