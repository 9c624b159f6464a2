"""The load suite's automation DAG: the offline Claude plans the same 20 steps at run time (no approval)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from load_tools import catalog

from airflow_claude.automation import AutomationSettings, claude_automation

load_automation = claude_automation(
    "load_automation",
    catalog=catalog,
    settings=AutomationSettings(
        max_steps=20,
        max_levels=6,
        max_parallel=20,
        max_replans=0,
        budget_usd=Decimal("5.00"),
        require_approval=False,
        step_retry_delay=timedelta(seconds=2),
        claude_retry_delay=timedelta(seconds=2),
    ),
    max_active_runs=256,
)
