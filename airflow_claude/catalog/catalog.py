"""The catalog: the allow-list of tools a plan may call, resolved by name and nothing else."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property

from airflow_claude.catalog.route import Route, distinct_routes
from airflow_claude.catalog.tool import Tool
from airflow_claude.errors import CatalogError
from airflow_claude.fingerprint import sha256_of
from airflow_claude.plan.refs import schema_at


class Catalog(Mapping[str, Tool]):
    """An immutable, name-keyed set of tools with a fingerprint of their contracts.

    A plan names tools; this is the only place a name turns into something callable. Nothing
    in a plan is ever imported or instantiated by path.
    """

    def __init__(self, tools: Iterable[Tool], *, name: str = "catalog") -> None:
        self.name = name
        by_name: dict[str, Tool] = {}
        for tool in tools:
            if not isinstance(tool, Tool):
                raise CatalogError(f"catalog {name!r}: {tool!r} is not a Tool (use python_tool/operator_tool)")
            if tool.name in by_name:
                raise CatalogError(f"catalog {name!r}: two tools are named {tool.name!r}")
            by_name[tool.name] = tool
        if not by_name:
            raise CatalogError(f"catalog {name!r} is empty")
        self._tools = dict(sorted(by_name.items()))
        for tool in self._tools.values():
            self._check_compensation(tool)
        self._check_routes()

    def _check_routes(self) -> None:
        """Two routes must not share a task-id name: a run-time plan gets one steps task per route."""
        seen: dict[str, Route] = {}
        for route in self.routes:
            other = seen.setdefault(route.name, route)
            if other != route:
                raise CatalogError(
                    f"catalog {self.name!r}: {route.label()} and {other.label()} have the same task name "
                    f"{route.name!r}; rename one queue"
                )

    @cached_property
    def routes(self) -> list[Route]:
        """The routes of its tools other than the default, each once, sorted."""
        return distinct_routes(tool.route for tool in self._tools.values())

    def _check_compensation(self, tool: Tool) -> None:
        """A compensation must name a catalog tool and fill its required parameters from real paths."""
        comp = tool.compensation
        if comp is None:
            return
        undo = self._tools.get(comp.tool)
        if undo is None:
            raise CatalogError(f"tool {tool.name!r}: compensating tool {comp.tool!r} is not in catalog {self.name!r}")
        wanted = set(undo.input_schema.get("properties", {}))
        missing = sorted(set(undo.input_schema.get("required", [])) - set(comp.args))
        unknown = sorted(set(comp.args) - wanted)
        if missing or unknown:
            raise CatalogError(
                f"tool {tool.name!r}: compensation {comp.tool!r} needs {missing} and does not take {unknown}"
            )
        for param, source in comp.args.items():
            kind, _, path = source.partition(".")
            if kind == "args" and path in tool.input_schema.get("properties", {}):
                continue
            if kind == "output" and schema_at(tool.output_schema, tuple(path.split(".")) if path else ())[0]:
                continue
            raise CatalogError(
                f"tool {tool.name!r}: compensation argument {param!r} = {source!r} must be 'args.<parameter>' "
                "or 'output.<path>' of the tool"
            )

    def __getitem__(self, key: str) -> Tool:
        return self._tools[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def __repr__(self) -> str:
        return f"Catalog({self.name!r}, tools={list(self._tools)}, fingerprint={self.fingerprint[:19]}...)"

    @cached_property
    def fingerprint(self) -> str:
        """Changes whenever any tool's contract changes: plans made against another one are re-checked."""
        return sha256_of([tool.contract() for tool in self._tools.values()])

    def describe(self) -> list[dict[str, object]]:
        """Tool contracts as sent to Claude: sorted by name, so the prompt is byte-stable."""
        return [
            {
                "name": tool.name,
                "description": tool.description,
                "version": tool.version,
                "side_effects": tool.side_effects,
                "input_schema": tool.input_schema,
                "output_schema": tool.output_schema,
            }
            for tool in self._tools.values()
        ]
