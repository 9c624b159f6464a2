"""Test DAG file: an automation (a plan made at run time) over the lineage catalog, and a DAG
scheduled on the Asset its planned step writes (through the automation's AssetAlias)."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from lineage_tools import SUMMARY, catalog

from airflow_claude.automation import AutomationSettings, claude_automation
from airflow_claude.planner import CallPolicy

lineage_auto = claude_automation(
    "lineage_auto",
    catalog=catalog,
    goal="Publish a one-line summary.",
    settings=AutomationSettings(
        max_steps=2, max_replans=0, require_approval=False, review="on_failure", step_retry_delay=timedelta(seconds=1)
    ),
    call_policy=CallPolicy(attempts=2, retry_after_cap=2.0, base_backoff=0.2, timeout=30.0),
)

with DAG("lineage_summary_consumer", schedule=[SUMMARY], start_date=datetime(2024, 1, 1), catchup=False):
    EmptyOperator(task_id="read_summary")
