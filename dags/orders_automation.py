"""Automations over the orders catalog: one triggered from the UI with a goal, one nightly.

``orders_assistant``: trigger it with a goal (Trigger DAG -> the form), approve the plan under
*Required actions*, watch each step run as its own task instance, read the ``report`` task.
``orders_nightly_review``: the same tools, a fixed goal relative to the run ("yesterday's paid
orders"), every night, approval off. Claude plans once, with run references, and every later
night (or backfilled day) reuses that plan for its own data interval: no planning call while runs
succeed, and with ``review="on_failure"`` no review call either; after a failure it plans again.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from airflow_claude.automation import AutomationSettings, claude_automation
from airflow_claude.examples.orders import catalog
from airflow_claude.planner import CallPolicy

orders_assistant = claude_automation(
    "orders_assistant",
    catalog=catalog,
    settings=AutomationSettings(
        max_steps=10,
        max_levels=4,
        max_replans=1,
        budget_usd=Decimal("0.50"),
        require_approval=True,
        approval_timeout=timedelta(hours=12),
        step_retry_delay=timedelta(seconds=5),
    ),
    call_policy=CallPolicy(attempts=3, retry_after_cap=30.0),
    tags=["example"],
)

orders_nightly_review = claude_automation(
    "orders_nightly_review",
    catalog=catalog,
    goal="Check yesterday's paid orders for data-quality problems, report revenue by region, tell #data-team.",
    schedule="0 0 * * *",
    settings=AutomationSettings(
        max_steps=8,
        require_approval=False,
        budget_usd=Decimal("0.25"),
        review="on_failure",
        plan_cache="airflow-variables",  # in the metadata database: every worker, on every host, shares it
    ),
    tags=["example"],
)
