"""Tools of the observability end-to-end tests: a read, a compensable write, a write that fails with a secret."""

from __future__ import annotations

from airflow_claude.catalog import Catalog, Compensation, ToolContext, python_tool


@python_tool(circuit=None)
def fetch(source: str) -> dict[str, int]:
    """Count the rows of a source."""
    return {"rows": 42 if source else 0}


@python_tool(side_effects="mutating", circuit=None)
def unpublish(message_id: str) -> dict[str, str]:
    """Delete a published message."""
    return {"deleted": message_id}


@python_tool(
    side_effects="mutating",
    circuit=None,
    compensation=Compensation(tool="unpublish", args={"message_id": "output.message_id"}),
)
def publish(channel: str, rows: int, context: ToolContext) -> dict[str, str]:
    """Publish a row count to a channel."""
    return {"message_id": f"msg-{context.idempotency_key[:12]}", "text": f"{rows} rows to {channel}"}


@python_tool(side_effects="mutating", circuit=None)
def warehouse_write(token: str, rows: int) -> dict[str, int]:
    """Write rows to the warehouse with a token; the warehouse refuses it and says which token."""
    from airflow.sdk import Variable

    Variable.get("warehouse_password")  # the task has read the secret: Airflow's masker knows it
    raise RuntimeError(f"warehouse refused token {token} for {rows} rows")


@python_tool(circuit=None)
def load_source(source: str, context: ToolContext) -> dict[str, int]:
    """Load a named source; the source 'broken' always fails."""
    if source == "broken":
        raise RuntimeError(f"source {source!r} is unreachable (try {context.try_number})")
    return {"rows": 7}


@python_tool
def summarize_load(rows: int, note: str = "") -> dict[str, str]:
    """Summarize a load."""
    return {"summary": f"{rows} rows {note}".strip()}


catalog = Catalog([fetch, publish, unpublish, warehouse_write, load_source, summarize_load], name="observability")
