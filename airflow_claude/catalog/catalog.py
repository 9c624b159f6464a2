"""The catalog: the allow-list of tools a plan may call, resolved by name and nothing else."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property

from airflow_claude.catalog.tool import Tool
from airflow_claude.errors import CatalogError
from airflow_claude.fingerprint import sha256_of


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
