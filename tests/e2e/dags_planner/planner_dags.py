"""Test DAGs: the planning call of an automation inside real DAG runs, against the offline Claude of the test.

Each is a whole-DAG automation with approval off and no re-plan round, so a run is: plan,
(auto) approve, commit, steps, review, report.

- ``planner_e2e_ok``: the goal comes from the trigger form; the test types a secret Airflow knows
  (the Claude connection's key) and templates that would reveal others if anything rendered them.
- ``planner_e2e_overloaded``: Claude answers 529 to this goal (marker ``E2E-OVERLOADED``); one
  Airflow retry, a second apart.
- ``planner_e2e_spend_limit``: Claude answers "spend limit reached" (marker ``E2E-SPEND-LIMIT``);
  three Airflow retries, which the retry policy must not use.
"""

from __future__ import annotations

from datetime import timedelta

from airflow_claude.automation import AutomationSettings, claude_automation
from airflow_claude.examples.orders import catalog

ONE_ROUND = AutomationSettings(require_approval=False, max_replans=0, step_retry_delay=timedelta(seconds=1))

planner_e2e_ok = claude_automation("planner_e2e_ok", catalog=catalog, settings=ONE_ROUND)

planner_e2e_overloaded = claude_automation(
    "planner_e2e_overloaded",
    catalog=catalog,
    goal="E2E-OVERLOADED: report revenue.",
    settings=AutomationSettings(
        require_approval=False, max_replans=0, claude_retries=1, claude_retry_delay=timedelta(seconds=1)
    ),
)

planner_e2e_spend_limit = claude_automation(
    "planner_e2e_spend_limit",
    catalog=catalog,
    goal="E2E-SPEND-LIMIT: report revenue.",
    settings=AutomationSettings(require_approval=False, max_replans=0, claude_retries=3),
)
