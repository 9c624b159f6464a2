"""Tools for the automation end-to-end tests: the orders catalog plus a source that can break."""

from __future__ import annotations

from pydantic import BaseModel

from airflow_claude.catalog import Catalog, ToolContext, python_tool
from airflow_claude.examples.orders import catalog as orders


class Loaded(BaseModel):
    source: str
    rows: int


# No circuit breaker: several scenarios break this tool on purpose, concurrently, and must not cut
# it off for the scenarios that use it successfully (the breaker has its own tests).
@python_tool(max_retries=2, default_retries=1, circuit=None)
def load_source(source: str, context: ToolContext) -> Loaded:
    """Load a named source; the source 'broken' always fails."""
    if source == "broken":
        raise RuntimeError(f"source {source!r} is unreachable (try {context.try_number})")
    return Loaded(source=source, rows=42)


@python_tool
def summarize_load(rows: int, note: str = "") -> dict[str, str]:
    """Summarize a load."""
    return {"summary": f"{rows} rows {note}".strip()}


catalog = Catalog([*orders.values(), load_source, summarize_load], name="e2e")
