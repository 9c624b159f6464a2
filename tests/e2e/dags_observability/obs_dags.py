"""DAGs of the observability end-to-end tests (traces and metrics exported to the test's OTLP receiver).

- ``obs_saga``: a compiled plan (``plans/obs_saga.json``): fetch, publish, then a warehouse write
  that fails; the saga undoes the publish.
- ``obs_auto``: an automation, approval off, one re-plan round; the offline Claude of the test
  answers an invalid plan first (a repair), then a plan whose load fails (a re-plan), then a good one.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from obs_tools import catalog

from airflow_claude.automation import AutomationSettings, claude_automation
from airflow_claude.factory import load_plan_dags

globals().update(load_plan_dags(Path(__file__).parent / "plans", catalog, retry_delay=timedelta(seconds=1)))

obs_auto = claude_automation(
    "obs_auto",
    catalog=catalog,
    goal="Load the source and summarize it.",
    settings=AutomationSettings(require_approval=False, max_replans=1, step_retry_delay=timedelta(seconds=1)),
)
