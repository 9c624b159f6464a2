"""Automation DAGs for the end-to-end tests (fast retries, small limits)."""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal

from auto_tools import catalog

from airflow_claude.automation import AutomationSettings, claude_automation
from airflow_claude.planner import CallPolicy

FAST = CallPolicy(attempts=2, retry_after_cap=2.0, base_backoff=0.2, timeout=30.0)

auto_main = claude_automation(
    "auto_main",
    catalog=catalog,
    settings=AutomationSettings(
        max_steps=4,
        max_levels=3,
        max_parallel=4,
        max_replans=1,
        budget_usd=Decimal("1.00"),
        require_approval=True,
        step_retry_delay=timedelta(seconds=1),
        max_step_retries=1,
    ),
    call_policy=FAST,
)

auto_nightly = claude_automation(
    "auto_nightly",
    catalog=catalog,
    goal="Nightly: load the good source and summarize it.",
    schedule="@daily",
    settings=AutomationSettings(
        max_steps=4,
        max_levels=3,
        require_approval=False,
        max_replans=0,
        plan_cache=os.path.join(os.environ.get("AIRFLOW_CLAUDE_DEMO_DIR", "/tmp"), "plan_cache"),
    ),
    call_policy=FAST,
)
