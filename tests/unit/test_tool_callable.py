"""``@python_tool`` keeps the decorated name a function: a tool is unit-tested by calling it."""

from __future__ import annotations

import dataclasses
import inspect
import logging
from datetime import date
from typing import Any

from airflow_claude.catalog import Catalog, ToolContext, python_tool
from airflow_claude.catalog.tool import PythonTool


@python_tool
def days_between(start: date, end: date) -> int:
    """Whole days from start to end."""
    return (end - start).days


@python_tool(name="tell", side_effects="mutating")
def notify(channel: str, message: str, context: ToolContext) -> dict[str, str]:
    """Post a message, once per idempotency key."""
    return {"channel": channel, "message": message, "key": context.idempotency_key}


def _context(key: str = "key-1") -> ToolContext:
    return ToolContext(
        idempotency_key=key,
        dag_id="dag",
        run_id="run",
        step_id="step",
        plan_id="plan",
        plan_hash="sha256:0",
        try_number=1,
        log=logging.getLogger("test"),
    )


def test_the_decorated_name_is_called_like_the_function() -> None:
    # the function's own types: no JSON coercion on a direct call
    assert days_between(date(2026, 10, 1), date(2026, 10, 31)) == 30
    assert days_between(start=date(2026, 1, 1), end=date(2026, 1, 2)) == 1


def test_a_tool_taking_a_tool_context_is_called_with_one_the_test_builds() -> None:
    assert notify("#data", "hello", _context("k-42")) == {"channel": "#data", "message": "hello", "key": "k-42"}
    assert notify(channel="#data", message="hi", context=_context())["key"] == "key-1"


def test_name_doc_signature_and_wrapped_are_the_functions() -> None:
    func = days_between.func
    assert func is not None
    assert days_between.__wrapped__ is func
    assert days_between.__name__ == "days_between"
    assert days_between.__qualname__ == func.__qualname__
    assert days_between.__module__ == __name__
    assert days_between.__doc__ == "Whole days from start to end."
    assert inspect.signature(days_between) == inspect.signature(func)
    assert list(inspect.signature(notify).parameters) == ["channel", "message", "context"]
    assert notify.__name__ == "notify"  # the function's name; the tool's name is still "tell"
    assert notify.name == "tell"


def test_it_is_still_the_tool_the_catalog_and_runtime_use() -> None:
    assert isinstance(days_between, PythonTool)
    catalog = Catalog([days_between, notify], name="callable")
    assert catalog["days_between"] is days_between
    assert "start" in days_between.input_schema["properties"]
    assert "context" not in notify.input_schema["properties"]
    # the runtime's path: validated JSON arguments coerced into the signature's types
    assert days_between.call({"start": "2026-10-01", "end": "2026-10-03"}) == 2
    assert notify.call({"channel": "#c", "message": "m"}, _context("rt"))["key"] == "rt"


def test_a_copy_of_the_tool_is_callable_too() -> None:
    copy: Any = dataclasses.replace(days_between, version="2")
    assert copy(date(2026, 1, 1), date(2026, 1, 3)) == 2
    assert copy.__wrapped__ is days_between.func
