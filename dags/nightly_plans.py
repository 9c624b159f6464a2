"""Reviewed plan files in ``plans/`` become scheduled DAGs: no model call per run.

Each ``plans/<plan id>.json`` compiles to the DAG ``<plan id>``; an invalid file shows up as a
paused DAG tagged ``airflow-claude:invalid-plan`` with its errors, and never hides the others.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from airflow_claude.examples.orders import catalog
from airflow_claude.factory import load_plan_dags

globals().update(
    load_plan_dags(Path(__file__).parent / "plans", catalog, retry_delay=timedelta(seconds=5), tags=["example"])
)
