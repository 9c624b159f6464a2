"""Wait for other mapped task instances of the run, in the triggerer, holding no worker slot.

A run-time plan's steps are mapped tasks (one per route); a step whose producers have not
finished defers with :class:`InstancesFinishedTrigger` and resumes when they have, whichever
route's task they ran in. The saga's undos wait for the undos that must go first the same way.
The states come from Airflow (the task instances' states), the one source of truth for "did it
finish".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_claude.runtime.states import all_finished, instance_states


class InstancesFinishedTrigger(BaseTrigger):
    """Fires once every listed ``(task_id, map_index)`` instance of the run has reached a terminal state.

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
        instances: list[tuple[str, int]] | list[list[Any]],
        poll_seconds: float = 1.0,
        min_wait_seconds: float = 5.0,
    ):
        super().__init__()
        self.dag_id = dag_id
        self.run_id = run_id
        self.instances: list[list[Any]] = sorted([str(task_id), int(index)] for task_id, index in instances)
        self.poll_seconds = poll_seconds
        self.min_wait_seconds = min_wait_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "dag_id": self.dag_id,
                "run_id": self.run_id,
                "instances": self.instances,
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
            instances = [(str(task_id), int(index)) for task_id, index in self.instances]
            states = await read(RuntimeTaskInstance.get_task_states, self.dag_id, self.run_id, instances)
            if all_finished(states) and time.monotonic() >= earliest:
                yield TriggerEvent({"states": [[task_id, index, state] for (task_id, index), state in states.items()]})
                return
            await asyncio.sleep(self.poll_seconds)


def event_states(event: dict[str, Any]) -> dict[tuple[str, int], str | None]:
    """The states an :class:`InstancesFinishedTrigger` event carries, keyed like :func:`instance_states`."""
    return {(str(task_id), int(index)): state for task_id, index, state in event.get("states") or []}
