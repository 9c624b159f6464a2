"""A one-tool catalog for the plan-cache end-to-end test: counting letters has no side effect."""

from __future__ import annotations

from airflow_claude.catalog import Catalog, python_tool


@python_tool(circuit=None)
def count_letters(word: str) -> dict[str, int]:
    """Count the letters of a word."""
    return {"letters": len(word)}


catalog = Catalog([count_letters], name="cache_e2e")
