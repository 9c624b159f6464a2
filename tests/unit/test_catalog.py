"""Tools and the catalog: schemas derived from Python, CatalogError for author mistakes, fingerprint."""

from __future__ import annotations

import typing
from typing import Any, Literal

import pytest
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from pydantic import BaseModel
from shop import CATALOG, OrderRow, Orders, Summary
from typing_extensions import TypedDict

from airflow_claude.catalog import Catalog, OperatorTool, PythonTool, ToolContext, operator_tool, python_tool
from airflow_claude.errors import CatalogError


class Point(TypedDict):
    x: int
    y: int


class StdlibTypedDict(typing.TypedDict):  # pydantic cannot use typing.TypedDict on Python < 3.12
    x: int


class Wrapper(BaseModel):
    points: list[Point]


# -- python tools ------------------------------------------------------------------------------


def test_input_schema_from_signature() -> None:
    @python_tool
    def fetch(table: str, ctx: ToolContext, limit: int = 10, columns: list[str] | None = None) -> None:
        """Fetch rows."""

    schema = fetch.input_schema
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["table"]
    assert set(schema["properties"]) == {"table", "limit", "columns"}  # ctx is filled by the runtime
    assert schema["properties"]["table"]["type"] == "string"
    assert schema["properties"]["limit"] == {"default": 10, "title": "Limit", "type": "integer"}
    assert {"type": "array", "items": {"type": "string"}} in schema["properties"]["columns"]["anyOf"]
    assert fetch.context_param == "ctx"
    assert isinstance(fetch, PythonTool) and fetch.kind == "python"
    assert fetch.input_validator.is_valid({"table": "t", "limit": 3})
    assert not fetch.input_validator.is_valid({"table": "t", "ctx": {}})


def test_literal_becomes_enum() -> None:
    @python_tool
    def group(by: Literal["day", "region"]) -> None:
        """Group."""

    assert group.input_schema["properties"]["by"]["enum"] == ["day", "region"]


def test_output_schema_from_pydantic_model_keeps_nested_defs() -> None:
    schema = CATALOG["load_orders"].output_schema
    assert schema is not None
    assert schema["required"] == ["rows", "count", "source"]
    assert schema["properties"]["rows"]["items"] == {"$ref": "#/$defs/OrderRow"}
    assert set(schema["$defs"]["OrderRow"]["properties"]) == set(OrderRow.model_fields)
    assert schema == Orders.model_json_schema()


def test_output_schema_from_typeddict() -> None:
    schema = CATALOG["summarize"].output_schema
    assert schema is not None
    assert schema["type"] == "object"
    assert set(schema["properties"]) == set(Summary.__annotations__) == {"total", "currency", "top_customers"}
    assert schema["properties"]["top_customers"]["type"] == "array"


def test_output_schema_of_a_model_holding_typeddicts() -> None:
    @python_tool
    def shape() -> Wrapper:
        """Points."""

    assert shape.output_schema is not None
    assert "Point" in shape.output_schema["$defs"]


def test_no_output_schema_without_a_return_annotation() -> None:
    def act(x: int):  # type: ignore[no-untyped-def]
        """Act."""

    assert python_tool(act).output_schema is None


def test_a_tool_returning_none_has_a_null_output_that_no_reference_can_enter() -> None:
    def act(x: int) -> None:
        """Act."""

    assert python_tool(act).output_schema == {"type": "null"}


def test_description_from_docstring_or_argument() -> None:
    @python_tool
    def documented(x: int) -> int:
        """First line.

        Indented detail.
        """
        return x

    assert documented.description == "First line.\n\nIndented detail."

    @python_tool(description="Explicit wins.", name="renamed", version="7", side_effects="mutating")
    def other(x: int) -> int:
        """Ignored."""
        return x

    assert (other.name, other.description, other.version, other.side_effects) == (
        "renamed",
        "Explicit wins.",
        "7",
        "mutating",
    )


def test_missing_type_hint() -> None:
    def untyped(x, y: int) -> int:  # type: ignore[no-untyped-def]
        """Add."""
        return y

    with pytest.raises(CatalogError, match="parameter 'x' needs a type hint"):
        python_tool(untyped)


def test_var_args_and_kwargs() -> None:
    def star(*values: int) -> None:
        """Star."""

    def double_star(**options: str) -> None:
        """Options."""

    with pytest.raises(CatalogError, match=r"\*args/\*\*kwargs"):
        python_tool(star)
    with pytest.raises(CatalogError, match=r"\*args/\*\*kwargs"):
        python_tool(double_star)


def test_stdlib_typeddict_is_a_catalog_error() -> None:
    def bad() -> StdlibTypedDict:
        """Bad."""
        return {"x": 1}

    with pytest.raises(CatalogError, match="cannot derive a JSON Schema"):
        python_tool(bad)


def test_missing_description() -> None:
    def silent(x: int) -> int:
        return x

    with pytest.raises(CatalogError, match="needs a description"):
        python_tool(silent)


@pytest.mark.parametrize("name", ["LoadOrders", "load-orders", "1load", "_load", "x" * 65, "load orders", "lôad"])
def test_bad_tool_names(name: str) -> None:
    def tool(x: int) -> int:
        """A tool."""
        return x

    with pytest.raises(CatalogError, match="must match"):
        python_tool(tool, name=name)


def test_bad_side_effects_and_retries() -> None:
    def tool(x: int) -> int:
        """A tool."""
        return x

    with pytest.raises(CatalogError, match="side_effects"):
        python_tool(tool, side_effects="sometimes")
    with pytest.raises(CatalogError, match="default_retries <= max_retries"):
        python_tool(tool, max_retries=1, default_retries=2)


# -- operator tools ----------------------------------------------------------------------------


def _sql_tool(**kwargs: Any) -> OperatorTool:
    options: dict[str, Any] = {
        "name": "run_sql",
        "description": "Run SQL.",
        "params": {"sql": {"type": "string"}},
        "fixed": {"conn_id": "warehouse"},
    }
    options.update(kwargs)
    return operator_tool(SQLExecuteQueryOperator, **options)


def test_operator_tool_schema_and_contract() -> None:
    tool = _sql_tool(params={"sql": {"type": "string"}, "autocommit": {"type": "boolean"}})
    assert tool.kind == "operator"
    assert tool.input_schema == {
        "type": "object",
        "properties": {"autocommit": {"type": "boolean"}, "sql": {"type": "string"}},
        "required": ["autocommit", "sql"],
        "additionalProperties": False,
    }
    assert tool.side_effects == "mutating"  # the safe default for an operator
    contract = tool.contract()
    assert contract["fixed"] == {"conn_id": "warehouse"}
    assert contract["operator"] == "airflow.providers.common.sql.operators.sql.SQLExecuteQueryOperator"
    assert tool.referenceable_params() == frozenset(SQLExecuteQueryOperator.template_fields)


def test_operator_tool_required_subset() -> None:
    tool = _sql_tool(params={"sql": {"type": "string"}, "autocommit": {"type": "boolean"}}, required=("sql",))
    assert tool.input_schema["required"] == ["sql"]


def test_operator_tool_rejects_unknown_param() -> None:
    with pytest.raises(CatalogError, match=r"SQLExecuteQueryOperator does not accept \['query'\]"):
        _sql_tool(params={"query": {"type": "string"}})
    with pytest.raises(CatalogError, match=r"does not accept \['connection'\]"):
        _sql_tool(fixed={"connection": "x"})


def test_operator_tool_accepts_base_operator_params() -> None:
    tool = _sql_tool(fixed={"conn_id": "warehouse", "pool": "sql_pool"})  # pool comes from BaseOperator
    assert tool.fixed["pool"] == "sql_pool"


def test_operator_tool_rejects_fixed_and_plan_filled() -> None:
    with pytest.raises(CatalogError, match=r"\['conn_id'\] are both fixed and plan-filled"):
        _sql_tool(params={"sql": {"type": "string"}, "conn_id": {"type": "string"}})


def test_operator_tool_rejects_an_invalid_json_schema() -> None:
    with pytest.raises(CatalogError, match="invalid JSON Schema"):
        _sql_tool(params={"sql": {"type": "text"}})


# -- the catalog -------------------------------------------------------------------------------


def _build(**change: Any) -> Catalog:
    """A fresh catalog each call; ``change`` alters the 'lookup' tool."""

    def lookup(key: str, default: int = 0) -> Point:
        """Look a key up."""
        return {"x": 1, "y": 2}

    def lookup_v2(key: str, default: str = "") -> Point:
        """Look a key up."""
        return {"x": 1, "y": 2}

    func = lookup_v2 if change.pop("schema", False) else lookup
    options: dict[str, Any] = {"name": "lookup", **change}
    return Catalog(
        [python_tool(func, **options), _sql_tool()],
        name="test",
    )


def test_catalog_mapping() -> None:
    catalog = _build()
    assert list(catalog) == ["lookup", "run_sql"]
    assert len(catalog) == 2
    assert "lookup" in catalog and "nope" not in catalog
    assert catalog.get("nope") is None
    assert catalog["lookup"].name == "lookup"
    assert "fingerprint=sha256:" in repr(catalog)


def test_duplicate_tool_names() -> None:
    with pytest.raises(CatalogError, match="two tools are named 'run_sql'"):
        Catalog([_sql_tool(), _sql_tool(description="Other.")])


def test_empty_catalog() -> None:
    with pytest.raises(CatalogError, match="is empty"):
        Catalog([])


def test_catalog_rejects_non_tools() -> None:
    def plain(x: int) -> int:
        return x

    with pytest.raises(CatalogError, match="is not a Tool"):
        Catalog([plain])  # type: ignore[list-item]


def test_fingerprint_is_stable() -> None:
    first, second = _build(), _build()
    assert first.fingerprint == second.fingerprint
    assert first.fingerprint.startswith("sha256:")
    reversed_order = Catalog(list(reversed(list(second.values()))), name="test")
    assert reversed_order.fingerprint == first.fingerprint


@pytest.mark.parametrize(
    "change",
    [
        {"version": "2"},
        {"description": "Look a key up, quickly."},
        {"schema": True},
        {"side_effects": "mutating"},
        {"max_retries": 4},
        {"max_timeout_seconds": 30},
    ],
    ids=lambda c: next(iter(c)),
)
def test_fingerprint_changes_with_the_contract(change: dict[str, Any]) -> None:
    assert _build(**change).fingerprint != _build().fingerprint


def test_fingerprint_changes_with_an_operator_tools_fixed_arguments() -> None:
    base = Catalog([_sql_tool()])
    other = Catalog([_sql_tool(fixed={"conn_id": "other"})])
    assert base.fingerprint != other.fingerprint


def test_describe_is_sorted_and_complete() -> None:
    described = CATALOG.describe()
    assert [tool["name"] for tool in described] == sorted(CATALOG) == ["load_orders", "notify", "run_sql", "summarize"]
    first = described[0]
    assert set(first) == {"name", "description", "version", "side_effects", "input_schema", "output_schema"}
    assert first["description"] == "Load recent orders from a named source."
    notify = next(tool for tool in described if tool["name"] == "notify")
    assert "ctx" not in notify["input_schema"]["properties"]  # type: ignore[index]
    assert notify["side_effects"] == "mutating"
