"""The tools of the Celery end-to-end DAGs: the orders catalog, a dashboard that can refuse, a source."""

from __future__ import annotations

from pydantic import BaseModel

from airflow_claude.catalog import Catalog, python_tool
from airflow_claude.examples.orders import catalog as orders


class Published(BaseModel):
    published: bool


class Loaded(BaseModel):
    source: str
    rows: int


@python_tool(max_retries=1)
def publish_dashboard(fail: bool) -> Published:
    """Publish the dashboard; fails on demand to exercise compensation."""
    if fail:
        raise RuntimeError("dashboard service refused the update")
    return Published(published=True)


@python_tool(max_retries=2, default_retries=1)
def load_source(source: str) -> Loaded:
    """Load a named source."""
    return Loaded(source=source, rows=42)


@python_tool
def summarize_load(rows: int) -> dict[str, str]:
    """Summarize a load."""
    return {"summary": f"{rows} rows"}


catalog = Catalog([*orders.values(), publish_dashboard, load_source, summarize_load], name="celery_e2e")
