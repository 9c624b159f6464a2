"""The catalog of the lineage end-to-end test: tools that declare the Assets they read and write.

- ``read_orders`` reads ``ORDERS`` (an inlet) and counts its rows (made up: the file is not needed).
- ``publish_report`` writes ``REPORT`` (an outlet): the DAG ``lineage_consumer`` is scheduled on it.
  Its ``note`` argument carries ``ARG_SECRET``, registered with Airflow's masker by the DAG files.
- ``publish_summary`` writes ``SUMMARY``: the automation ``lineage_auto`` plans a call of it at run
  time, and ``lineage_summary_consumer`` is scheduled on it.
- ``check_connection`` reads the password of connection ``lineage_secret`` (masked by Airflow).

Sits beside the DAG files (importable from there) and is listed in ``.airflowignore``.
"""

from __future__ import annotations

from airflow.sdk import Asset

from airflow_claude.catalog import Catalog, ToolContext, python_tool
from airflow_claude.observability.redaction import register_secret

ORDERS = Asset(name="lineage_orders", uri="file:///lineage/orders.csv")
REPORT = Asset(name="lineage_report", uri="file:///lineage/reports/daily.md")
SUMMARY = Asset(name="lineage_summary", uri="file:///lineage/reports/summary.md")
ARG_SECRET = "lin3age-arg-s3cret-0b7d42"
CONN_SECRET = "lin3age-conn-s3cret-77aa19"

register_secret(ARG_SECRET)  # a secret a plan argument carries: masked wherever it would show


@python_tool(inlets=[ORDERS])
def read_orders(day: str) -> dict[str, int]:
    """Count a day's orders in the orders file."""
    return {"rows": 3 + len(day) % 2}


@python_tool(side_effects="mutating", outlets=[REPORT])
def publish_report(rows: int, note: str, context: ToolContext) -> dict[str, object]:
    """Publish the daily report; its note may carry a signature."""
    return {"rows": rows, "note": note, "key": context.idempotency_key}


@python_tool(side_effects="mutating", outlets=[SUMMARY])
def publish_summary(text: str) -> dict[str, int]:
    """Publish a one-line summary (the automation's plans call it)."""
    return {"chars": len(text)}


@python_tool
def check_connection(conn_id: str) -> dict[str, object]:
    """Check that a connection has a password (and echo it: Airflow masks it)."""
    from airflow.sdk import BaseHook

    password = BaseHook.get_connection(conn_id).password or ""
    return {"has_password": bool(password), "password": password}


catalog = Catalog([read_orders, publish_report, publish_summary, check_connection], name="lineage")
