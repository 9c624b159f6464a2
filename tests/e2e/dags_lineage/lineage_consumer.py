"""Test DAG file: a DAG scheduled on the Asset the plan's ``publish_report`` step writes."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from lineage_tools import REPORT

with DAG("lineage_consumer", schedule=[REPORT], start_date=datetime(2024, 1, 1), catchup=False, tags=["e2e"]):
    EmptyOperator(task_id="read_report")
