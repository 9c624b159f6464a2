"""Wait for other instances of the same mapped task, in the triggerer, holding no worker slot.

A run-time plan's steps are one mapped task; a step whose producers have not finished defers
with :class:`InstancesFinishedTrigger` and resumes when they have. The saga's undos wait for the
undos that must go first the same way. The states come from Airflow (the task instances'
states), the one source of truth for "did it finish".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_claude.runtime.states import all_finished, instance_states


class InstancesFinishedTrigger(BaseTrigger):
    """Fires once every listed instance of ``task_id`` in the run has reached a terminal state.

    It never fires sooner than ``min_wait_seconds`` after it started: in Airflow 3.3 a deferred
    task that resumes before the scheduler has drained the executor's event for its deferring
    exit can be failed as "changed externally" and retried (apache/airflow#72716, open). The
    pause gives the scheduler time to drain it; the retry that may still happen is absorbed by
    the step's ledger and idempotency key.
    """

    def __init__(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        map_indexes: list[int],
        poll_seconds: float = 1.0,
        min_wait_seconds: float = 5.0,
    ):
        super().__init__()
        self.dag_id = dag_id
        self.run_id = run_id
        self.task_id = task_id
        self.map_indexes = sorted(map_indexes)
        self.poll_seconds = poll_seconds
        self.min_wait_seconds = min_wait_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "dag_id": self.dag_id,
                "run_id": self.run_id,
                "task_id": self.task_id,
                "map_indexes": self.map_indexes,
                "poll_seconds": self.poll_seconds,
                "min_wait_seconds": self.min_wait_seconds,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
        from asgiref.sync import sync_to_async

        read = sync_to_async(instance_states)
        earliest = time.monotonic() + self.min_wait_seconds
        while True:
            states = await read(
                RuntimeTaskInstance.get_task_states, self.dag_id, self.run_id, self.task_id, self.map_indexes
            )
            if all_finished(states) and time.monotonic() >= earliest:
                yield TriggerEvent({"states": {str(i): s for i, s in states.items()}})
                return
            await asyncio.sleep(self.poll_seconds)
