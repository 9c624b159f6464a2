"""Read plan files strictly: size-bounded, UTF-8, no duplicate keys, no NaN; then validate."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_claude.errors import AirflowClaudeError, Code, PlanIssue
from airflow_claude.plan.limits import DEFAULT_LIMITS, PlanLimits
from airflow_claude.plan.validator import ValidationResult, validate_plan

if TYPE_CHECKING:
    from airflow_claude.catalog.catalog import Catalog


class _DuplicateKeyError(ValueError, AirflowClaudeError):
    def __init__(self, key: str, siblings: list[str]) -> None:
        super().__init__(key)
        self.key = key
        self.siblings = siblings


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):  # rare: find the first repeated key for the message
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key, [k for k, _ in pairs])
            seen.add(key)
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to inf: NaN/Infinity by the back door
        raise ValueError(f"number {text} is out of range")
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _has_lone_surrogate(data: Any) -> bool:
    """True when any key or string holds an unpaired surrogate (valid JSON escapes, but not Unicode)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_json_text(text: str | bytes, *, file: str | None = None) -> tuple[Any, list[PlanIssue]]:
    """Parse JSON strictly. Duplicate keys are an error: the last one silently winning hides edits."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        data = json.loads(
            text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants, parse_float=_finite_float
        )
        if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):
            return None, [
                PlanIssue(
                    Code.MALFORMED_JSON,
                    "malformed JSON: a string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), "
                    "which is not Unicode text",
                    file=file,
                )
            ]
        return data, []
    except RecursionError:
        return None, [PlanIssue(Code.MALFORMED_JSON, "malformed JSON: nested too deeply to read", file=file)]
    except _DuplicateKeyError as exc:
        return None, [
            PlanIssue(
                Code.DUPLICATE_JSON_KEY,
                f"key '{exc.key}' appears more than once in the same object (keys: {exc.siblings[:12]})",
                file=file,
                hint="JSON readers disagree on which copy wins; keep exactly one",
            )
        ]
    except UnicodeDecodeError as exc:
        return None, [PlanIssue(Code.MALFORMED_JSON, f"not UTF-8 text: {exc.reason} at byte {exc.start}", file=file)]
    except ValueError as exc:
        where = ""
        if isinstance(exc, json.JSONDecodeError):
            where = f" (line {exc.lineno}, column {exc.colno})"
            exc_text = exc.msg
        else:
            exc_text = str(exc)
        return None, [PlanIssue(Code.MALFORMED_JSON, f"malformed JSON: {exc_text}{where}", file=file)]


def load_plan_file(
    path: Path | str,
    catalog: Catalog,
    *,
    limits: PlanLimits = DEFAULT_LIMITS,
    require_id_matches_file: bool = True,
) -> ValidationResult:
    """Load and validate one plan file; problems come back as issues, never as exceptions."""
    path = Path(path)
    file = str(path)
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            return ValidationResult(
                None,
                [
                    PlanIssue(
                        Code.FILE_TOO_LARGE,
                        f"plan file is {size} bytes, over the limit of {limits.max_file_bytes}",
                        file=file,
                    )
                ],
            )
        raw = path.read_bytes()
    except OSError as exc:
        return ValidationResult(None, [PlanIssue(Code.FILE_UNREADABLE, f"cannot read: {exc.strerror}", file=file)])
    data, issues = parse_json_text(raw, file=file)
    if issues:
        return ValidationResult(None, issues)
    result = validate_plan(data, catalog, limits=limits, file=file)
    plan_id = data.get("id") if isinstance(data, dict) else None
    if require_id_matches_file and isinstance(plan_id, str) and plan_id != path.stem:
        result.issues.append(
            PlanIssue(
                Code.FILE_NAME_MISMATCH,
                f"plan id '{plan_id}' does not match the file name '{path.name}'",
                file=file,
                plan_id=plan_id,
                path="$.id",
                hint=f"rename the file to '{plan_id}.json' (a worker finds a plan by its id)",
            )
        )
        result.plan = None
    return result
