"""Did a step finish? The one answer: its task instance's state in Airflow, read through the Task SDK.

Compiled plans (a task per step) and run-time plans (an instance of a mapped task per step) both
ask here; XCom records are what a step reported, not the truth about whether it ran.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

FAILED = frozenset({"failed", "upstream_failed"})
TERMINAL = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


def task_states(ti: Any, task_ids: Sequence[str]) -> dict[str, str | None]:
    """States of this run's task instances (a mapped task's instances as ``<task>_<index>``)."""
    raw = ti.get_task_states(dag_id=ti.dag_id, task_ids=list(task_ids), run_ids=[ti.run_id])
    states = raw.get(ti.run_id, {}) if isinstance(raw, dict) else {}
    return {str(k): v for k, v in states.items()}


def instance_states(
    get_task_states: Callable[..., Any], dag_id: str, run_id: str, task_id: str, map_indexes: Iterable[int]
) -> dict[int, str | None]:
    """The state of each instance ``task_id[i]`` of a run (None: not created or not scheduled yet).

    ``get_task_states`` is the Task SDK's ``RuntimeTaskInstance.get_task_states`` (``ti.get_task_states``
    in a task; the class's own in the triggerer).
    """
    raw = get_task_states(dag_id=dag_id, task_ids=[task_id], run_ids=[run_id])
    states = raw.get(run_id, {}) if isinstance(raw, dict) else {}
    return {i: states.get(f"{task_id}_{i}") for i in map_indexes}


def all_finished(states: dict[int, str | None]) -> bool:
    return all(state in TERMINAL for state in states.values())
