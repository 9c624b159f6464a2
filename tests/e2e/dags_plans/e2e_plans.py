"""Test DAG file: every plan in ``e2e_plan_files/`` becomes a DAG (an invalid one a placeholder DAG)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from e2e_tools import catalog

from airflow_claude.factory import load_plan_dags

globals().update(
    load_plan_dags(Path(__file__).parent / "e2e_plan_files", catalog, retry_delay=timedelta(seconds=2), tags=["e2e"])
)
