"""``Claude run``: an extra link on every step task and on the report task, to the run's page in the plugin.

Airflow 3 computes extra links on the worker when a task finishes (the URL is stored in XCom),
so the link is built from ``[api] base_url``, the address people open the UI with.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

#: The plugin's mount path on the api-server (``airflow_claude.ui.plugin``).
URL_PREFIX = "/airflow-claude"


def run_page_url(base_url: str, dag_id: str, run_id: str) -> str:
    """The run page's address: ``<base_url>/airflow-claude/runs/<dag_id>/<run_id>``."""
    return f"{base_url.rstrip('/')}{URL_PREFIX}/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"


def _base_url() -> str:
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback="http://localhost:8080/") or "/"


class RunPageLink(BaseOperatorLink):
    """Opens the airflow-claude page of the task's run (plan graph, steps, cost, replay)."""

    name = "Claude run"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return run_page_url(_base_url(), ti_key.dag_id, ti_key.run_id)
