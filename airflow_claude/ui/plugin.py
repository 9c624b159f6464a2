"""The Airflow plugin: the run pages as a FastAPI app on the api-server, external views, the extra link.

Registered through the ``airflow.plugins`` entry point. External views (Airflow 3 UI): one in the
navigation (every run), one tab on each DAG (its runs), one tab on each DAG run (that run's page);
``{DAG_ID}`` and ``{RUN_ID}`` are filled in by the UI.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_claude.ui.links import URL_PREFIX, RunPageLink

EXTERNAL_VIEWS: list[dict[str, Any]] = [
    {
        "name": "Claude runs",
        "href": f"{URL_PREFIX}/",
        "destination": "nav",
        "url_route": "airflow-claude",
        "category": "browse",
    },
    {
        "name": "Claude runs",
        "href": f"{URL_PREFIX}/?dag_id={{DAG_ID}}",
        "destination": "dag",
        "url_route": "airflow-claude-dag",
    },
    {
        "name": "Claude run",
        "href": f"{URL_PREFIX}/runs/{{DAG_ID}}/{{RUN_ID}}",
        "destination": "dag_run",
        "url_route": "airflow-claude-run",
    },
]


def _app() -> Any:
    from airflow_claude.ui.app import create_app

    return create_app()


class AirflowClaudePlugin(AirflowPlugin):
    """Run pages, JSON API, export and replay of airflow-claude runs, behind Airflow's auth manager."""

    name = "airflow_claude"
    fastapi_apps = [{"app": _app(), "url_prefix": URL_PREFIX, "name": "airflow-claude runs"}]
    external_views = EXTERNAL_VIEWS
    operator_extra_links = [RunPageLink()]
