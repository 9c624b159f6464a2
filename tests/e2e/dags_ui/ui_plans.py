"""Compiled plans of the UI end-to-end tests: every plan in ``ui_plan_files/`` becomes a DAG."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from ui_tools import catalog

from airflow_claude.factory import load_plan_dags

globals().update(load_plan_dags(Path(__file__).parent / "ui_plan_files", catalog, retry_delay=timedelta(seconds=2)))
