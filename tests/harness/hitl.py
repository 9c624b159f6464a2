"""Answering human-in-the-loop tasks through the REST API, around an Airflow 3.3.2 race."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import AirflowApiError, AirflowInstanceError
from .rest import AirflowRestClient, seg


class HitlClient(AirflowRestClient):
    """``answer_hitl`` and ``hitl_detail`` on top of the REST client."""

    def answer_hitl(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        chosen_options: Sequence[str],
        params_input: Mapping[str, Any] | None = None,
        map_index: int = -1,
        timeout: float = 120.0,
        settle_seconds: float = 8.0,
    ) -> dict[str, Any]:
        """Answer a human-in-the-loop task safely.

        Waits until the task instance is ``awaiting_input``, then another
        ``settle_seconds``, then PATCHes ``hitlDetails``. The pause avoids an
        Airflow 3.3.2 race: the answer moves the task to ``scheduled`` and the
        scheduler re-queues it; if that happens before the scheduler has handled
        the executor's "workload finished" event of the parking run, it sees a
        finished workload for a queued task and marks the task FAILED. On a loaded
        machine that event came 5 s after the task parked, so the pause grows with
        every try the race costs (8 s, 16 s, 24 s by default).
        """
        path = f"/dags/{seg(dag_id)}/dagRuns/{seg(run_id)}/taskInstances/{seg(task_id)}/{map_index}/hitlDetails"
        body = {"chosen_options": list(chosen_options), "params_input": dict(params_input or {})}
        deadline = time.monotonic() + timeout
        result: dict[str, Any] = {}
        answered_try = 0
        answers = 0
        while True:
            ti = self.wait_for_task_state(
                dag_id, run_id, task_id, ("awaiting_input",), map_index, max(1.0, deadline - time.monotonic())
            )
            if ti.get("try_number", 0) <= answered_try:
                raise AirflowInstanceError(f"{task_id} is waiting again on try {ti.get('try_number')}")
            answers += 1
            time.sleep(settle_seconds * answers)
            result = self._patch_answer(path, body)
            answered_try = int(ti.get("try_number", 0))
            # If the race still hit (the task failed and Airflow retried it), the request comes back on
            # a new try, as a person would see it again in the UI: answer once more.
            if not self._asks_again(
                dag_id, run_id, task_id, map_index, answered_try, min(60.0, deadline - time.monotonic())
            ):
                return result

    def _patch_answer(self, path: str, body: dict[str, Any], attempts: int = 6) -> dict[str, Any]:
        """PATCH the answer; on SQLite a busy database answers 500 ("Database error"): try again."""
        for attempt in range(1, attempts + 1):
            try:
                answer: dict[str, Any] = self.patch(path, json=body)
                return answer
            except AirflowApiError as exc:
                if exc.status_code < 500 or attempt == attempts:
                    raise
                time.sleep(2.0 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _asks_again(
        self, dag_id: str, run_id: str, task_id: str, map_index: int, answered_try: int, within: float
    ) -> bool:
        end = time.monotonic() + max(within, 0.0)
        while time.monotonic() < end:
            ti = self.task_instance(dag_id, run_id, task_id, map_index)
            state, try_number = ti.get("state"), int(ti.get("try_number") or 0)
            if state == "awaiting_input" and try_number > answered_try:
                return True
            if state in ("success", "skipped", "failed", "upstream_failed", "removed"):
                return False
            time.sleep(1.0)
        return False

    def hitl_detail(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        """The HITL detail (subject, options, response...) of a task instance."""
        path = f"/dags/{seg(dag_id)}/dagRuns/{seg(run_id)}/taskInstances/{seg(task_id)}/{map_index}/hitlDetails"
        result: dict[str, Any] = self.get(path)
        return result
