"""A task instance and context for running an automation task's ``execute`` without Airflow.

The fake keeps XCom per (task id, map index, key) and task states per (task id, map index), and
answers ``get_task_states`` the way the Task SDK does (mapped instances as ``<task>_<index>``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow_claude.catalog import Catalog, Compensation, ToolContext, python_tool

DAG_ID = "kit_dag"
RUN_ID = "manual__2026-12-01T00:00:00+00:00"
CALLS: list[tuple[str, dict[str, Any]]] = []


@python_tool(side_effects="mutating", compensation=Compensation("unwrite", {"key": "output.key"}), circuit=None)
def write(name: str, context: ToolContext) -> dict[str, str]:
    """Write a thing; its effect key is the step's idempotency key."""
    CALLS.append(("write", {"name": name}))
    return {"key": context.idempotency_key, "name": name}


@python_tool(side_effects="mutating", circuit=None)
def unwrite(key: str) -> dict[str, str]:
    """Undo a write."""
    CALLS.append(("unwrite", {"key": key}))
    return {"undone": key}


@python_tool(circuit=None)
def count(name: str) -> dict[str, int]:
    """Count the letters of a name."""
    CALLS.append(("count", {"name": name}))
    return {"n": len(name)}


CATALOG = Catalog([write, unwrite, count], name="kit")


@dataclass
class FakeTI:
    task_id: str = "task"
    map_index: int = -1
    try_number: int = 1
    dag_id: str = DAG_ID
    run_id: str = RUN_ID
    xcom: dict[tuple[str, int | None, str], Any] = field(default_factory=dict)
    states: dict[tuple[str, int | None], str] = field(default_factory=dict)
    task: Any = None

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[(self.task_id, None if self.map_index < 0 else self.map_index, key)] = value

    def xcom_pull(
        self, task_ids: str, key: str = "return_value", map_indexes: int | None = None, default: Any = None
    ) -> Any:
        return self.xcom.get((task_ids, map_indexes, key), default)

    def get_task_states(self, dag_id: str, task_ids: list[str], run_ids: list[str]) -> dict[str, Any]:
        found = {
            (task if index is None else f"{task}_{index}"): state
            for (task, index), state in self.states.items()
            if task in task_ids
        }
        return {run_ids[0]: found}

    def at(self, task_id: str, map_index: int = -1, try_number: int = 1) -> FakeTI:
        """The same run's store, seen from another task instance."""
        self.task_id, self.map_index, self.try_number = task_id, map_index, try_number
        return self


def context(ti: FakeTI, **params: Any) -> dict[str, Any]:
    start = datetime(2026, 11, 30, tzinfo=UTC)
    return {
        "ti": ti,
        "run_id": ti.run_id,
        "params": params,
        "logical_date": datetime(2026, 12, 1, tzinfo=UTC),
        "data_interval_start": start,
        "data_interval_end": datetime(2026, 12, 1, tzinfo=UTC),
        "task_state_store": None,
    }


def log() -> logging.Logger:
    return logging.getLogger("kit")
