"""DAGs of the Celery end-to-end tests: the plan files in ``plans/`` (the example nightly plan, a saga
whose last step fails, a small plan) and an automation, all on one catalog."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from celery_tools import catalog

from airflow_claude.automation import AutomationSettings, claude_automation
from airflow_claude.factory import load_plan_dags
from airflow_claude.planner import CallPolicy

globals().update(load_plan_dags(Path(__file__).parent / "plans", catalog, retry_delay=timedelta(seconds=1)))

celery_auto = claude_automation(
    "celery_auto",
    catalog=catalog,
    settings=AutomationSettings(
        max_steps=4,
        max_levels=3,
        max_parallel=4,
        max_replans=0,
        budget_usd=Decimal("1.00"),
        require_approval=True,
        step_retry_delay=timedelta(seconds=1),
        max_step_retries=1,
    ),
    call_policy=CallPolicy(attempts=2, retry_after_cap=2.0, base_backoff=0.2, timeout=30.0),
)
