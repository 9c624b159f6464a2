"""Errors that carry their context: file, plan, step, JSON path, a stable code and a hint.

Every problem found in a plan is a :class:`PlanIssue`. Validation collects all of them
instead of stopping at the first, and :class:`PlanValidationError` carries the list.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


class AirflowClaudeError(Exception):
    """Base of every error this package defines, so one ``except AirflowClaudeError`` catches them all.

    Each error keeps its builtin base as well (``ValueError``, ``RuntimeError``), so existing
    ``except`` clauses still match.
    """


class Code:
    """Stable error codes; tests, the CLI's JSON output and users' tooling rely on them."""

    FILE_UNREADABLE = "file_unreadable"
    FILE_TOO_LARGE = "file_too_large"
    FILE_NAME_MISMATCH = "file_name_mismatch"
    MALFORMED_JSON = "malformed_json"
    DUPLICATE_JSON_KEY = "duplicate_json_key"
    NOT_AN_OBJECT = "not_an_object"
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    UNKNOWN_FIELD = "unknown_field"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    INVALID_ID = "invalid_id"
    EMPTY_PLAN = "empty_plan"
    TOO_MANY_STEPS = "too_many_steps"
    DUPLICATE_STEP_ID = "duplicate_step_id"
    UNKNOWN_DEPENDENCY = "unknown_dependency"
    SELF_DEPENDENCY = "self_dependency"
    DEPENDENCY_CYCLE = "dependency_cycle"
    FAN_IN_EXCEEDED = "fan_in_exceeded"
    FAN_OUT_EXCEEDED = "fan_out_exceeded"
    DEPTH_EXCEEDED = "depth_exceeded"
    LEVEL_TOO_WIDE = "level_too_wide"
    UNKNOWN_TOOL = "unknown_tool"
    INVALID_ARGUMENT = "invalid_argument"
    FIXED_ARGUMENT = "fixed_argument"
    ARGUMENT_TOO_LARGE = "argument_too_large"
    NESTING_TOO_DEEP = "nesting_too_deep"
    MALFORMED_REFERENCE = "malformed_reference"
    REFERENCE_UNKNOWN_STEP = "reference_unknown_step"
    REFERENCE_NOT_UPSTREAM = "reference_not_upstream"
    REFERENCE_BAD_PATH = "reference_bad_path"
    REFERENCE_NOT_SUPPORTED = "reference_not_supported"
    REFERENCE_TYPE_MISMATCH = "reference_type_mismatch"
    REFERENCE_FORBIDDEN_NAMESPACE = "reference_forbidden_namespace"
    REFERENCE_UNKNOWN_RUN_FIELD = "reference_unknown_run_field"
    REFERENCE_INTO_SCALAR = "reference_into_scalar"
    REFERENCE_TEMPLATE = "reference_template"
    PARAM_NOT_DECLARED = "param_not_declared"
    INVALID_PARAM_NAME = "invalid_param_name"
    PARAM_SHADOWS_RUN_FIELD = "param_shadows_run_field"
    INVALID_PARAM_SCHEMA = "invalid_param_schema"
    PARAM_DEFAULT_INVALID = "param_default_invalid"
    PARAM_REQUIRED_ON_SCHEDULE = "param_required_on_schedule"
    RETRIES_EXCEED_LIMIT = "retries_exceed_limit"
    TIMEOUT_EXCEEDS_LIMIT = "timeout_exceeds_limit"
    INVALID_SCHEDULE = "invalid_schedule"
    COMPILE_FAILED = "compile_failed"


@dataclass(frozen=True)
class PlanIssue:
    """One problem in one plan, precise enough to fix without reading the validator."""

    code: str
    message: str
    file: str | None = None
    plan_id: str | None = None
    step_id: str | None = None
    path: str = "$"
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape the CLI prints: file, plan_id, step_id, path, code, message (+ hint)."""
        data = asdict(self)
        return {k: data[k] for k in ("file", "plan_id", "step_id", "path", "code", "message", "hint")}

    def __str__(self) -> str:
        where = " ".join(
            part
            for part in (
                self.file or "",
                f"plan={self.plan_id}" if self.plan_id else "",
                f"step={self.step_id}" if self.step_id else "",
                f"at {self.path}",
            )
            if part
        )
        text = f"{where}: [{self.code}] {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


@dataclass
class PlanValidationError(ValueError, AirflowClaudeError):
    """Raised when a plan has one or more issues; ``issues`` holds all of them."""

    issues: list[PlanIssue] = field(default_factory=list)

    def __str__(self) -> str:
        count = len(self.issues)
        lines = [f"{count} problem{'s' if count != 1 else ''} in plan:"]
        lines += [f"  - {issue}" for issue in self.issues]
        return "\n".join(lines)


class CatalogError(ValueError, AirflowClaudeError):
    """A tool or catalog definition is inconsistent (a DAG author's mistake, found at import)."""


class StepError(RuntimeError, AirflowClaudeError):
    """A step failed in a way retrying cannot fix (bad resolved arguments, broken tool contract)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean ...' hint for a misspelt name, or None when nothing is close."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def choices_hint(choices: Sequence[str], limit: int = 20) -> str:
    """List the available names, bounded so a huge catalog does not flood the message."""
    names = sorted(choices)
    shown = ", ".join(names[:limit])
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return f"available: {shown}{more}" if names else "nothing is available"
