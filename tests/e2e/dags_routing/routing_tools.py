"""Tools of the routing end-to-end DAGs: the warehouse tools run on the ``warehouse`` queue only."""

from __future__ import annotations

from pydantic import BaseModel

from airflow_claude.catalog import Catalog, Compensation, ToolContext, python_tool


class Rows(BaseModel):
    rows: int


class Loaded(BaseModel):
    key: str
    rows: int


@python_tool(circuit=None)
def extract(rows: int) -> Rows:
    """Read some rows (any worker)."""
    return Rows(rows=rows)


@python_tool(
    side_effects="mutating",
    queue="warehouse",
    compensation=Compensation("unload_warehouse", {"key": "output.key"}),
    circuit=None,
)
def load_warehouse(rows: int, context: ToolContext) -> Loaded:
    """Load rows into the warehouse (only workers on the warehouse network reach it)."""
    return Loaded(key=context.idempotency_key, rows=rows)


@python_tool(side_effects="mutating", queue="warehouse", circuit=None)
def unload_warehouse(key: str) -> dict[str, str]:
    """Remove a load from the warehouse (the compensation of load_warehouse)."""
    return {"unloaded": key}


@python_tool(circuit=None)
def announce(rows: int) -> dict[str, str]:
    """Say how many rows were loaded (any worker)."""
    return {"message": f"{rows} rows loaded"}


@python_tool(queue="nowhere", circuit=None)
def render_on_gpu(rows: int) -> dict[str, int]:
    """Render a chart on the GPU workers (none is running in the test)."""
    return {"pixels": rows}


catalog = Catalog([extract, load_warehouse, unload_warehouse, announce], name="routing")
stray_catalog = Catalog([extract, load_warehouse, unload_warehouse, announce, render_on_gpu], name="routing_stray")
