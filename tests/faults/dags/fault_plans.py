"""The fault suite's compiled plan (``plans/faults_orders.json``), with compensation; fast retries.

Kept apart from the automation DAG so that its tasks never import the Claude SDK (parsing cost
per task matters on a small, busy machine).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fault_tools import catalog

from airflow_claude.factory import load_plan_dags

globals().update(load_plan_dags(Path(__file__).parent / "plans", catalog, retry_delay=timedelta(seconds=1)))
