"""References: the one explicit form ``{"$ref": "<namespace>.<name>[.<key>...]"}``, never a template.

A reference is a JSON object with exactly one key, ``$ref``. It is replaced, whole, at run time
by the value it names. There is no string interpolation and no Jinja. The namespaces are a
closed set:

- ``steps.<step_id>.output[.<key>...]``: a producing step's output (from its XCom);
- ``run.<field>``: a value of the DAG run (data interval, logical date, run id: ``run_fields.py``);
- ``params.<name>[.<key>...]``: a parameter the plan declares (the trigger form's value).

Anything else (``conn``, ``var``, ``macros``, ``ti``...) is refused: a reference can never reach a
connection, a variable or Airflow's template context. Path segments are object keys or, for
arrays, non-negative integers (``steps.q.output.rows.0``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_claude.errors import AirflowClaudeError, Code, choices_hint, did_you_mean
from airflow_claude.plan.params import PARAM_NAME_PATTERN
from airflow_claude.plan.run_fields import RUN_FIELDS

REF_KEY = "$ref"
NAMESPACES = ("steps", "run", "params")
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_PARAM = re.compile(PARAM_NAME_PATTERN)
_TEMPLATE = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")


@dataclass(frozen=True)
class Ref:
    """A parsed reference: its namespace, the name in it (step id, run field, param) and a path."""

    namespace: str
    name: str
    path: tuple[str, ...] = ()

    @property
    def step_id(self) -> str:
        """The producing step (for ``steps`` references)."""
        return self.name

    @property
    def text(self) -> str:
        head = ("steps", self.name, "output") if self.namespace == "steps" else (self.namespace, self.name)
        return ".".join((*head, *self.path))


class RefSyntaxError(ValueError, AirflowClaudeError):
    """A ``$ref`` object that does not follow the allowed forms; ``code`` says which rule it breaks."""

    def __init__(self, message: str, code: str = Code.MALFORMED_REFERENCE, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint


def is_ref(value: Any) -> bool:
    """True for any object that tries to be a reference (has a ``$ref`` key)."""
    return isinstance(value, dict) and REF_KEY in value


def parse_ref(value: dict[str, Any]) -> Ref:
    """Parse ``{"$ref": "steps.x.output.a.b"}`` (or ``run.*``, ``params.*``); raise :class:`RefSyntaxError`."""
    if len(value) != 1:
        extra = sorted(k for k in value if k != REF_KEY)
        raise RefSyntaxError(f"a reference object must have only the '$ref' key, found also {extra}")
    text = value[REF_KEY]
    if not isinstance(text, str):
        raise RefSyntaxError("'$ref' must be a string like 'steps.<step_id>.output.<key>'")
    # the same few short texts recur in every plan of a folder; a long one is parsed, not kept
    return _parse_ref_cached(text) if len(text) <= _CACHED_REF_CHARS else _parse_ref_text(text)


_CACHED_REF_CHARS = 256
_FORMS = "'steps.<step_id>.output[.<key>...]', 'run.<field>' or 'params.<name>[.<key>...]'"


def _parse_ref_text(text: str) -> Ref:
    if _TEMPLATE.search(text):
        raise RefSyntaxError(
            f"'{text}' holds template syntax; a reference is never rendered",
            Code.REFERENCE_TEMPLATE,
            "name the value directly, e.g. {\"$ref\": \"run.data_interval_start_ds\"}",
        )
    parts = text.split(".")
    namespace = parts[0]
    if namespace == "steps":
        return _steps_ref(text, parts)
    if namespace == "run":
        return _run_ref(text, parts)
    if namespace == "params":
        return _params_ref(text, parts)
    raise RefSyntaxError(
        f"'{namespace}' in '{text}' is not a reference namespace: references reach only steps, run and params, "
        "never connections, variables or Airflow's template context",
        Code.REFERENCE_FORBIDDEN_NAMESPACE,
        f"write {_FORMS}",
    )


def _steps_ref(text: str, parts: list[str]) -> Ref:
    if len(parts) < 3 or parts[2] != "output":
        raise RefSyntaxError(f"'{text}' is not of the form 'steps.<step_id>.output[.<key>...]'")
    if not _ID.fullmatch(parts[1]):  # fullmatch: '$' alone also matches before a final newline
        raise RefSyntaxError(f"'{parts[1]}' in '{text}' is not a valid step id")
    return Ref("steps", parts[1], _segments(text, parts[3:]))


def _run_ref(text: str, parts: list[str]) -> Ref:
    field = parts[1] if len(parts) > 1 else ""
    if field not in RUN_FIELDS:
        raise RefSyntaxError(
            f"'{text}': '{field}' is not a run field",
            Code.REFERENCE_UNKNOWN_RUN_FIELD,
            did_you_mean(field, RUN_FIELDS) or choices_hint(sorted(RUN_FIELDS)),
        )
    if len(parts) > 2:
        raise RefSyntaxError(
            f"'{text}': run.{field} is a {RUN_FIELDS[field].schema['type']}, it has no '{'.'.join(parts[2:])}'",
            Code.REFERENCE_INTO_SCALAR,
            f"use {{\"$ref\": \"run.{field}\"}} whole",
        )
    return Ref("run", field)


def _params_ref(text: str, parts: list[str]) -> Ref:
    if len(parts) < 2 or not _PARAM.fullmatch(parts[1]):
        raise RefSyntaxError(f"'{text}' is not of the form 'params.<name>[.<key>...]' with a valid param name")
    return Ref("params", parts[1], _segments(text, parts[2:]))


def _segments(text: str, segments: list[str]) -> tuple[str, ...]:
    for segment in segments:
        if not _SEGMENT.fullmatch(segment):
            raise RefSyntaxError(f"path segment '{segment}' in '{text}' is empty or has forbidden characters")
    return tuple(segments)


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


def lookup(base: Any, ref: Ref) -> Any:
    """Walk ``ref.path`` through the referenced value; KeyError/IndexError name the missing segment."""
    current = base
    what = "output" if ref.namespace == "steps" else "value"
    for depth, segment in enumerate(ref.path):
        where = Ref(ref.namespace, ref.name, ref.path[: depth + 1]).text
        if isinstance(current, dict):
            if segment not in current:
                raise KeyError(f"{where}: key '{segment}' not in the {what} (keys: {sorted(current)[:20]})")
            current = current[segment]
        elif isinstance(current, list):
            if not segment.isdigit() or int(segment) >= len(current):
                raise IndexError(f"{where}: no index '{segment}' in a list of {len(current)} items")
            current = current[int(segment)]
        else:
            raise KeyError(f"{where}: cannot index into a {type(current).__name__}")
    return current


def resolve_refs(
    value: Any,
    outputs: Mapping[str, Any],
    run: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
) -> Any:
    """Return ``value`` with every reference replaced: step outputs, run values and params by name."""
    if isinstance(value, dict):
        if REF_KEY in value:
            ref = parse_ref(value)
            if ref.namespace == "steps":
                return lookup(outputs[ref.name], ref)
            source = run if ref.namespace == "run" else params
            if source is None or ref.name not in source:
                raise KeyError(f"{ref.text}: no value for '{ref.name}' in this run")
            return lookup(source[ref.name], ref)
        return {k: resolve_refs(v, outputs, run, params) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_refs(v, outputs, run, params) for v in value]
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
