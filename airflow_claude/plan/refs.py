"""References between steps: the one explicit form ``{"$ref": "steps.<step_id>.output[.<key>...]"}``.

A reference is a JSON object with exactly one key, ``$ref``. It is replaced, whole, by the
value found at the path in the producing step's output. There is no string interpolation and
no Jinja: a reference is data that the runtime resolves from the producer's XCom.
Path segments are object keys or, for arrays, non-negative integers (``steps.q.output.rows.0``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

REF_KEY = "$ref"
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Ref:
    """A parsed reference: the producing step and the path inside its output."""

    step_id: str
    path: tuple[str, ...]

    @property
    def text(self) -> str:
        return ".".join(("steps", self.step_id, "output", *self.path))


class RefSyntaxError(ValueError):
    """A ``$ref`` object that does not follow the one allowed form."""


def is_ref(value: Any) -> bool:
    """True for any object that tries to be a reference (has a ``$ref`` key)."""
    return isinstance(value, dict) and REF_KEY in value


def parse_ref(value: dict[str, Any]) -> Ref:
    """Parse ``{"$ref": "steps.x.output.a.b"}``; raise :class:`RefSyntaxError` with the reason."""
    if len(value) != 1:
        extra = sorted(k for k in value if k != REF_KEY)
        raise RefSyntaxError(f"a reference object must have only the '$ref' key, found also {extra}")
    text = value[REF_KEY]
    if not isinstance(text, str):
        raise RefSyntaxError("'$ref' must be a string like 'steps.<step_id>.output.<key>'")
    # the same few short texts recur in every plan of a folder; a long one is parsed, not kept
    return _parse_ref_cached(text) if len(text) <= _CACHED_REF_CHARS else _parse_ref_text(text)


_CACHED_REF_CHARS = 256


def _parse_ref_text(text: str) -> Ref:
    parts = text.split(".")
    if len(parts) < 3 or parts[0] != "steps" or parts[2] != "output":
        raise RefSyntaxError(f"'{text}' is not of the form 'steps.<step_id>.output[.<key>...]'")
    if not _ID.fullmatch(parts[1]):  # fullmatch: '$' alone also matches before a final newline
        raise RefSyntaxError(f"'{parts[1]}' in '{text}' is not a valid step id")
    for segment in parts[3:]:
        if not _SEGMENT.fullmatch(segment):
            raise RefSyntaxError(f"path segment '{segment}' in '{text}' is empty or has forbidden characters")
    return Ref(step_id=parts[1], path=tuple(parts[3:]))


_parse_ref_cached = functools.lru_cache(maxsize=4096)(_parse_ref_text)  # a Ref is immutable: safe to share


def iter_refs(value: Any, path: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(json_path, ref_object)`` for every reference object nested in ``value``."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        here, item = stack.pop()
        if isinstance(item, dict):
            if REF_KEY in item:
                yield here, item
                continue
            stack.extend((f"{here}.{k}", v) for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend((f"{here}[{i}]", v) for i, v in reversed(list(enumerate(item))))


def contains_ref(value: Any) -> bool:
    """True when ``value`` holds a reference anywhere."""
    return next(iter_refs(value), None) is not None


def lookup(output: Any, ref: Ref) -> Any:
    """Walk ``ref.path`` through a producer's output; KeyError/IndexError name the missing segment."""
    current = output
    for depth, segment in enumerate(ref.path):
        where = ".".join(("steps", ref.step_id, "output", *ref.path[: depth + 1]))
        if isinstance(current, dict):
            if segment not in current:
                raise KeyError(f"{where}: key '{segment}' not in the output (keys: {sorted(current)[:20]})")
            current = current[segment]
        elif isinstance(current, list):
            if not segment.isdigit() or int(segment) >= len(current):
                raise IndexError(f"{where}: no index '{segment}' in a list of {len(current)} items")
            current = current[int(segment)]
        else:
            raise KeyError(f"{where}: cannot index into a {type(current).__name__}")
    return current


def resolve_refs(value: Any, outputs: dict[str, Any]) -> Any:
    """Return ``value`` with every reference replaced by the producer's output at its path."""
    if isinstance(value, dict):
        if REF_KEY in value:
            ref = parse_ref(value)
            return lookup(outputs[ref.step_id], ref)
        return {k: resolve_refs(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_refs(v, outputs) for v in value]
    return value


def schema_at(schema: dict[str, Any] | None, path: tuple[str, ...]) -> tuple[bool, dict[str, Any] | None]:
    """Follow ``path`` through a JSON Schema.

    Returns ``(exists, subschema)``: ``exists`` is False only when the schema proves the path
    cannot exist; ``subschema`` is None when the schema says nothing about that place.
    """
    if schema is None:
        return True, None
    root = schema
    current: dict[str, Any] | None = schema
    for segment in path:
        if current is None:
            return True, None
        current = _deref(root, current)
        branches = current.get("anyOf") or current.get("oneOf")
        if branches:
            found = [schema_at(_with_defs(root, b), (segment,)) for b in branches]
            hits = [sub for ok, sub in found if ok]
            if not hits:
                return False, None
            current = hits[0]
            continue
        kind = current.get("type")
        if kind == "object" or "properties" in current:
            props = current.get("properties", {})
            if segment in props:
                current = props[segment]
                continue
            # A schema that lists properties (a model, a TypedDict) names every key a reference
            # may use, unless it explicitly allows others: an unlisted key is almost surely a typo.
            extra = current.get("additionalProperties", None if props else True)
            if extra is False or extra is None:
                return False, None
            current = extra if isinstance(extra, dict) else None
        elif kind == "array" or "items" in current or "prefixItems" in current:
            if not segment.isdigit():
                return False, None
            prefix = current.get("prefixItems")
            items = current.get("items")
            if prefix and int(segment) < len(prefix):
                current = prefix[int(segment)]
            elif isinstance(items, dict):
                current = items
            elif items is False:
                return False, None
            else:
                current = None
        elif kind in ("string", "integer", "number", "boolean", "null"):
            return False, None
        else:
            current = None
    return True, (_deref(root, current) if current is not None else None)


def _deref(root: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``#/$defs/...`` references (what pydantic emits for nested models)."""
    seen = 0
    while isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/") and seen < 32:
        target: Any = root
        for part in schema["$ref"][2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        schema = target if isinstance(target, dict) else {}
        seen += 1
    return schema


def _with_defs(root: dict[str, Any], branch: dict[str, Any]) -> dict[str, Any]:
    """A branch of anyOf keeps access to the root's ``$defs``."""
    if "$defs" in root and "$defs" not in branch:
        return {**branch, "$defs": root["$defs"]}
    return branch
