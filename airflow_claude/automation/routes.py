"""Routes of a run-time plan: each queue/executor's steps (and undos) go to a mapped task of their own.

A mapped task has one queue and one executor for all its instances, and Airflow maps only over a
task's return value. So the producer (``commit``, ``saga.to_undo``) returns the default route's
tickets and pushes every other route's under ``routes``; a small ``route_<name>`` task per route
returns that route's tickets for its ``steps_<name>`` (``undo_<name>``) task to map over. A
catalog whose tools name no queue builds none of this: its DAG is the one-route DAG.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from airflow_claude.automation.automation import Automation
from airflow_claude.automation.contracts import ROUTES_KEY
from airflow_claude.automation.task import AutomationTask
from airflow_claude.catalog.route import DEFAULT_ROUTE, Route


class _Ticket(Protocol):
    task: str
    step: dict[str, Any]

    def dump(self) -> dict[str, Any]: ...


def hand_out(ti: Any, automation: Automation, tickets: Sequence[_Ticket], task_of: Callable[[Route], str]) -> Any:
    """Push the tickets of every routed task under ``routes``; return the default route's (the return value)."""
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ticket in tickets:
        by_task[ticket.task].append(ticket.dump())
    if automation.catalog.routes:
        ti.xcom_push(key=ROUTES_KEY, value={r.name: by_task.get(task_of(r), []) for r in automation.catalog.routes})
    return by_task.get(task_of(DEFAULT_ROUTE), [])


class RouteTicketsOperator(AutomationTask):
    """Hand one route's tickets to its mapped task, and say in the log where those steps will run."""

    ui_color = "#f0f0f0"

    def __init__(self, *, source_task: str, route_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source_task = source_task
        self.route_name = route_name

    def execute(self, context: Any) -> list[dict[str, Any]]:
        routes = context["ti"].xcom_pull(task_ids=self.source_task, key=ROUTES_KEY) or {}
        tickets = list(routes.get(self.route_name) or [])
        route = next((r for r in self.automation.catalog.routes if r.name == self.route_name), None)
        if tickets and route is not None:
            names = ", ".join(str(t.get("step", {}).get("id")) for t in tickets)
            self.log.info(
                "%d task instance(s) go to %s: %s. They stay queued until a worker listening there takes them "
                "(CeleryExecutor: airflow celery worker -q %s).",
                len(tickets),
                route.label(),
                names,
                route.queue or "<queue>",
            )
        return tickets
