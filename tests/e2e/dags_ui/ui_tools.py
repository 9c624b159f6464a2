"""Tools of the UI end-to-end tests: a small orders catalog, and the same catalog as changed since.

``partner_rate`` reads the ``partner_api`` connection's password and (badly) echoes it in its
answer and its log: the masker must keep it out of XCom, and so out of the run page.
``changed_catalog`` renamed ``summarize_counts``'s parameter ``rows`` to ``row_count``, so a plan
made for ``catalog`` no longer validates against it.

Listed in ``.airflowignore``: imported by the DAG files beside it, not parsed as one.
"""

from __future__ import annotations

from airflow.sdk import BaseHook
from pydantic import BaseModel

from airflow_claude.catalog import Catalog, ToolContext, python_tool

PARTNER_CONN_ID = "partner_api"


class Counted(BaseModel):
    source: str
    rows: int


class Rate(BaseModel):
    region: str
    rate: str
    auth: str


class Summary(BaseModel):
    summary: str


@python_tool(circuit=None)
def count_rows(source: str) -> Counted:
    """Count the rows of a named source."""
    return Counted(source=source, rows=42)


@python_tool(circuit=None)
def partner_rate(region: str, context: ToolContext) -> Rate:
    """Ask the partner API for a region's rate (authenticated with the partner_api connection)."""
    token = BaseHook.get_connection(PARTNER_CONN_ID).password or ""
    context.log.info("partner call for %s with token %s", region, token)
    return Rate(region=region, rate="1.25", auth=f"Bearer {token}")


@python_tool(circuit=None)
def summarize_counts(rows: int, rate: str = "1") -> Summary:
    """Summarize a row count at a rate."""
    return Summary(summary=f"{rows} rows at {rate}")


@python_tool(name="summarize_counts", circuit=None)
def summarize_counts_renamed(row_count: int, rate: str = "1") -> Summary:
    """Summarize a row count at a rate (the parameter was renamed since)."""
    return Summary(summary=f"{row_count} rows at {rate}")


catalog = Catalog([count_rows, partner_rate, summarize_counts], name="ui_orders")
changed_catalog = Catalog([count_rows, partner_rate, summarize_counts_renamed], name="ui_orders")
