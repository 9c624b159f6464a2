"""The fault suite's automation DAG: Claude plans at run time (no approval), the same tools, fast retries."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from fault_tools import catalog

from airflow_claude.automation import AutomationSettings, claude_automation
from airflow_claude.planner import CallPolicy

#: Two in-process attempts per model call, waits capped at 2 s, a 4 s call timeout.
FAST = CallPolicy(attempts=2, retry_after_cap=2.0, base_backoff=0.2, timeout=4.0)

faults_automation = claude_automation(
    "faults_automation",
    catalog=catalog,
    settings=AutomationSettings(
        max_steps=4,
        max_levels=1,
        max_parallel=4,
        max_replans=0,
        budget_usd=Decimal("1.00"),
        require_approval=False,
        step_retry_delay=timedelta(seconds=1),
        max_step_retries=2,
        claude_retry_delay=timedelta(seconds=1),  # doubling: 1 s, 2 s, 4 s ...
    ),
    call_policy=FAST,
)
faults_automation.max_active_runs = 32
