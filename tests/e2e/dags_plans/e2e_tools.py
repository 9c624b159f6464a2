"""The catalog of the compiled-plans end-to-end test: the example orders tools plus two test tools.

- ``flaky_total`` fails on its first try and succeeds on the retry; it takes ``count`` by
  reference from an upstream step and appends what each try saw (try number, idempotency key)
  to ``<demo dir>/flaky/<run>__<step>.jsonl``.
- ``echo_args`` writes the exact arguments it received to ``<demo dir>/echo/<dag>__<run>__<step>.json``.

This module sits beside the loader in the test DAG folder (importable from there) and is listed in
``.airflowignore``, so the dag-processor does not parse it as a DAG file.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from airflow_claude.catalog import Catalog, ToolContext, python_tool
from airflow_claude.examples.orders import catalog as orders
from airflow_claude.examples.orders import demo_dir


def safe_name(text: str) -> str:
    """A run id as a file name (the test computes the same name)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:120]


class FlakyTotal(BaseModel):
    total: int
    seen: int
    try_number: int


@python_tool(max_retries=2, default_retries=0, max_timeout_seconds=60)
def flaky_total(count: int, factor: int, context: ToolContext) -> FlakyTotal:
    """Multiply an upstream count by a factor; fails on purpose on the first try."""
    folder = demo_dir() / "flaky"
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"try_number": context.try_number, "idempotency_key": context.idempotency_key, "count": count}
    with (folder / f"{safe_name(context.run_id)}__{context.step_id}.jsonl").open("a") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
    if context.try_number < 2:
        raise RuntimeError(f"E2E flaky_total: failing try {context.try_number} on purpose")
    return FlakyTotal(total=count * factor, seen=count, try_number=context.try_number)


@python_tool(side_effects="mutating", max_timeout_seconds=60)
def echo_args(payload: dict[str, str], label: str, context: ToolContext) -> dict[str, Any]:
    """Write the arguments exactly as received to a JSON file and return them."""
    received = {"payload": payload, "label": label}
    folder = demo_dir() / "echo"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{safe_name(context.dag_id)}__{safe_name(context.run_id)}__{context.step_id}.json"
    target.write_text(json.dumps(received, sort_keys=True))
    return received


catalog = Catalog([*orders.values(), flaky_total, echo_args], name="orders_e2e")
