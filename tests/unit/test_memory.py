"""The automation's memory: bounded, newest last, one entry per run, newest first in the prompt."""

from __future__ import annotations

import json

from airflow_claude.automation.memory import memory_prompt, merge_entry


def entry(run: int, reason: str = "ok") -> dict[str, object]:
    return {"run_id": f"r{run}", "goal": "g", "verdict": "done", "reason": reason, "failed_steps": []}


def test_merge_keeps_the_newest_entries_only() -> None:
    entries: list[dict[str, object]] = []
    for run in range(8):
        entries = merge_entry(entries, entry(run), keep=5)
    assert [e["run_id"] for e in entries] == ["r3", "r4", "r5", "r6", "r7"]


def test_merge_replaces_an_earlier_entry_of_the_same_run() -> None:
    entries = merge_entry([entry(1), entry(2, "first try")], entry(2, "second try"), keep=5)
    assert [(e["run_id"], e["reason"]) for e in entries] == [("r1", "ok"), ("r2", "second try")]


def test_merge_with_keep_zero_forgets_everything() -> None:
    assert merge_entry([entry(1)], entry(2), keep=0) == []


def test_prompt_lists_newest_first_and_stops_at_the_character_cap() -> None:
    entries = [entry(run) for run in range(10)]
    one_line = len(json.dumps({k: entries[0][k] for k in ("failed_steps", "goal", "reason", "run_id", "verdict")}))
    prompt = memory_prompt(entries, max_chars=3 * (one_line + 1))
    assert prompt is not None
    lines = prompt.splitlines()[1:]
    assert [json.loads(line)["run_id"] for line in lines] == ["r9", "r8", "r7"]
    assert memory_prompt(entries, max_chars=10) is None
