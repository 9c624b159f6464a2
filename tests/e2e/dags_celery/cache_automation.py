"""A fixed-goal automation DAG whose plan cache lives in Airflow Variables (shared by every Celery worker).

The word "DAG" is needed: with dag_discovery_safe_mode, a file lacking "dag" or "airflow" is never parsed.
"""

from __future__ import annotations

from cache_tools import catalog

from airflow_claude.automation import AutomationSettings, claude_automation
from airflow_claude.planner import CallPolicy

cache_nightly = claude_automation(
    "cache_nightly",
    catalog=catalog,
    goal="Count the letters of the word airflow.",
    settings=AutomationSettings(
        max_steps=2,
        max_levels=1,
        require_approval=False,
        max_replans=0,
        review="on_failure",
        plan_cache="airflow-variables",
    ),
    call_policy=CallPolicy(attempts=2, retry_after_cap=2.0, base_backoff=0.2, timeout=30.0),
)
