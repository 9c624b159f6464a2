"""Compiled plans whose last step fails (or not), to exercise compensation (a saga) in a DAG."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel

from airflow_claude.catalog import Catalog, python_tool
from airflow_claude.examples.orders import catalog as orders
from airflow_claude.factory import load_plan_dags


class Published(BaseModel):
    published: bool


@python_tool(max_retries=1)
def publish_dashboard(fail: bool) -> Published:
    """Publish the dashboard; fails on demand to exercise compensation."""
    if fail:
        raise RuntimeError("dashboard service refused the update")
    return Published(published=True)


catalog = Catalog([*orders.values(), publish_dashboard], name="saga")
globals().update(load_plan_dags(Path(__file__).parent / "plans", catalog, retry_delay=timedelta(seconds=1)))
