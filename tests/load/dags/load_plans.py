"""The load suite's compiled plans: every ``plans/*.json`` the test wrote next to this file.

Kept apart from the automation DAG so that a compiled step's task process never imports the
Claude SDK (parsing cost per task matters on a small machine).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from load_tools import catalog

from airflow_claude.factory import load_plan_dags

globals().update(load_plan_dags(Path(__file__).parent / "plans", catalog, retry_delay=timedelta(seconds=2)))
