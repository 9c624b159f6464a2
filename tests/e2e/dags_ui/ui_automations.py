"""Automation DAGs of the UI end-to-end tests: approval off, no re-plan, fast retries.

``ui_orders_changed`` runs the same automation over the changed catalog: a plan stored by
``ui_orders`` no longer fits it, so replaying that plan there must be refused.
"""

from __future__ import annotations

from datetime import timedelta

from ui_tools import catalog, changed_catalog

from airflow_claude.automation import AutomationSettings, claude_automation
from airflow_claude.planner import CallPolicy

FAST = CallPolicy(attempts=2, retry_after_cap=2.0, base_backoff=0.2, timeout=30.0)
SETTINGS = AutomationSettings(
    max_steps=4,
    max_levels=3,
    max_replans=0,
    require_approval=False,
    step_retry_delay=timedelta(seconds=1),
    max_step_retries=1,
    claude_retries=0,
)

ui_orders = claude_automation("ui_orders", catalog=catalog, settings=SETTINGS, call_policy=FAST)
ui_orders_changed = claude_automation("ui_orders_changed", catalog=changed_catalog, settings=SETTINGS, call_policy=FAST)
