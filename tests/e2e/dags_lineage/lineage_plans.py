"""Test DAG file: the plans in ``lineage_plan_files/``, compiled; their tools declare Assets."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from lineage_tools import catalog

from airflow_claude.factory import load_plan_dags

globals().update(
    load_plan_dags(
        Path(__file__).parent / "lineage_plan_files", catalog, retry_delay=timedelta(seconds=2), tags=["e2e"]
    )
)
