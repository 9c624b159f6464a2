"""DAGs of the routing end-to-end tests: compiled plans in ``plans/`` and two automations."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from routing_tools import catalog, stray_catalog

from airflow_claude.automation import AutomationSettings, claude_automation
from airflow_claude.factory import load_plan_dags

globals().update(load_plan_dags(Path(__file__).parent / "plans", stray_catalog, retry_delay=timedelta(seconds=1)))

SETTINGS = AutomationSettings(
    max_steps=4,
    max_replans=0,
    require_approval=False,
    review="on_failure",
    step_retry_delay=timedelta(seconds=1),
    max_step_retries=1,
)
routed_auto = claude_automation("routed_auto", catalog=catalog, settings=SETTINGS)
stray_auto = claude_automation("stray_auto", catalog=stray_catalog, settings=SETTINGS)
