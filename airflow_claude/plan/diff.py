"""What changed between two versions of a plan: steps added, removed or changed, and how.

Answers "what changed since the last version" on the run page (a re-plan against the plan it
replaces, an approver's edit against Claude's proposal). Works on plan documents (dicts), so a
stored plan that no longer fits today's model still compares. Values are shown as compact JSON,
truncated; the caller masks the text before it reaches a page.
"""

from __future__ import annotations

import json
from typing import Any

VALUE_CHARS = 80
_MISSING = object()


def _text(value: Any) -> str:
    if value is _MISSING:
        return "(none)"
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def _steps(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    steps = plan.get("steps")
    if not isinstance(steps, list):
        return {}
    return {s["id"]: s for s in steps if isinstance(s, dict) and isinstance(s.get("id"), str)}


def _paths(before: Any, after: Any, path: str) -> list[str]:
    """The leaf paths where two JSON values differ, as ``path: old -> new``."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[str] = []
        for key in sorted(set(before) | set(after), key=str):
            found += _paths(before.get(key, _MISSING), after.get(key, _MISSING), f"{path}.{key}")
        return found
    if before == after and type(before) is type(after):
        return []
    return [f"{path}: {_text(before)} -> {_text(after)}"]


def plan_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """One line per change from ``before`` to ``after``, in a stable order (empty when they are alike)."""
    changes: list[str] = []
    for key in ("goal", "schedule"):
        if before.get(key) != after.get(key):
            changes.append(f"{key}: {_text(before.get(key))} -> {_text(after.get(key))}")
    changes += [f"params{line}" for line in _paths(before.get("params") or {}, after.get("params") or {}, "")]
    old, new = _steps(before), _steps(after)
    for step_id in sorted(set(old) - set(new)):
        changes.append(f"removed step {step_id} ({old[step_id].get('tool')})")
    for step_id in sorted(set(new) - set(old)):
        changes.append(f"added step {step_id} ({new[step_id].get('tool')})")
    for step_id in sorted(set(old) & set(new)):
        a, b = old[step_id], new[step_id]
        lines = []
        if a.get("tool") != b.get("tool"):
            lines.append(f"tool: {a.get('tool')} -> {b.get('tool')}")
        needs = sorted(a.get("depends_on") or []), sorted(b.get("depends_on") or [])
        if needs[0] != needs[1]:
            lines.append(f"depends_on: {_text(needs[0])} -> {_text(needs[1])}")
        lines += _paths(a.get("args") or {}, b.get("args") or {}, "args")
        for key in ("retries", "timeout_seconds"):
            if a.get(key) != b.get(key):
                lines.append(f"{key}: {_text(a.get(key))} -> {_text(b.get(key))}")
        changes += [f"changed step {step_id}: {line}" for line in lines]
    return changes
