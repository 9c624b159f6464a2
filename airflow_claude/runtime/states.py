"""Did a step finish? The one answer: its task instance's state in Airflow, read through the Task SDK.

Compiled plans (a task per step) and run-time plans (an instance of a mapped task per step) both
ask here; XCom records are what a step reported, not the truth about whether it ran.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

FAILED = frozenset({"failed", "upstream_failed"})
TERMINAL = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


def task_states(ti: Any, task_ids: Sequence[str]) -> dict[str, str | None]:
    """States of this run's task instances (a mapped task's instances as ``<task>_<index>``)."""
    raw = ti.get_task_states(dag_id=ti.dag_id, task_ids=list(task_ids), run_ids=[ti.run_id])
    states = raw.get(ti.run_id, {}) if isinstance(raw, dict) else {}
    return {str(k): v for k, v in states.items()}


def instance_states(
    get_task_states: Callable[..., Any], dag_id: str, run_id: str, instances: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], str | None]:
    """The state of each mapped instance ``(task_id, map_index)`` of a run (None: not created or scheduled yet).

    ``get_task_states`` is the Task SDK's ``RuntimeTaskInstance.get_task_states`` (``ti.get_task_states``
    in a task; the class's own in the triggerer). One call for every task involved.
    """
    wanted = [(str(task_id), int(index)) for task_id, index in instances]
    if not wanted:
        return {}
    task_ids = sorted({task_id for task_id, _ in wanted})
    raw = get_task_states(dag_id=dag_id, task_ids=task_ids, run_ids=[run_id])
    states = raw.get(run_id, {}) if isinstance(raw, dict) else {}
    return {(task_id, index): states.get(f"{task_id}_{index}") for task_id, index in wanted}


def all_finished(states: Mapping[Any, str | None]) -> bool:
    return all(state in TERMINAL for state in states.values())
