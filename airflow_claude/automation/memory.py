"""Durable, bounded memory of an automation's earlier runs, kept in an Airflow Variable.

Why a Variable: it lives in the metadata database (it survives a restart of every Airflow
process), a person can read, edit or delete it in the UI (Admin -> Variables) or through the
REST API, tasks can read and write it through the Task SDK, and it needs no new table, service
or permission. The memory is a JSON list of the last ``memory_runs`` reviews, each capped, and
the slice given to the planner is capped in characters too.
"""

from __future__ import annotations

import json
from typing import Any

MEMORY_PREFIX = "airflow_claude_memory__"
_PROMPT_KEYS = ("run_id", "data_interval_start", "data_interval_end", "goal", "verdict", "reason", "failed_steps")


def memory_key(dag_id: str) -> str:
    return MEMORY_PREFIX + dag_id


def read_memory(dag_id: str) -> list[dict[str, Any]]:
    from airflow.sdk import Variable

    try:
        raw = Variable.get(memory_key(dag_id), default=None)
    except Exception:
        return []
    if not raw:
        return []
    try:
        entries = json.loads(raw)
    except ValueError:
        return []
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def memory_prompt(entries: list[dict[str, Any]], max_chars: int) -> str | None:
    """The newest entries first, as many as fit in ``max_chars``."""
    lines: list[str] = []
    used = 0
    for entry in reversed(entries):
        line = json.dumps(
            {k: entry.get(k) for k in _PROMPT_KEYS if k in entry},
            sort_keys=True,
            ensure_ascii=False,
        )
        if used + len(line) > max_chars:
            break
        lines.append(line)
        used += len(line) + 1
    return "Earlier runs of this automation (newest first):\n" + "\n".join(lines) if lines else None


def merge_entry(entries: list[dict[str, Any]], entry: dict[str, Any], keep: int) -> list[dict[str, Any]]:
    """``entries`` plus ``entry`` (replacing an older entry of the same run), newest ``keep`` kept."""
    others = [e for e in entries if e.get("run_id") != entry.get("run_id")]
    return [*others, entry][-keep:] if keep > 0 else []


def remember(dag_id: str, entry: dict[str, Any], keep: int, attempts: int = 3, settle_s: float = 0.5) -> bool:
    """Append ``entry`` and keep the newest ``keep`` entries; True once the entry is seen stored.

    A Variable has no compare-and-set, so two runs finishing together could each write a list
    without the other's entry. Reading back after a short pause and merging again when the entry
    is gone closes most of that window; a lost entry costs only a line of context, never a run.
    """
    import time

    from airflow.sdk import Variable

    for _ in range(max(1, attempts)):
        Variable.set(
            memory_key(dag_id),
            json.dumps(merge_entry(read_memory(dag_id), entry, keep), sort_keys=True, ensure_ascii=False),
            description=f"airflow-claude memory of {dag_id}: delete to make the automation forget",
        )
        time.sleep(settle_s)
        if any(e.get("run_id") == entry.get("run_id") for e in read_memory(dag_id)):
            return True
    return False
