"""Where a tool's steps run: an Airflow queue and, with several executors configured, an executor.

A route is deployment, not contract: it is left out of the tool's contract and the catalog
fingerprint, so moving a tool to other workers never invalidates a reviewed plan. Compiled plans
put it on each step's task; run-time plans get one mapped ``steps`` task per route
(``automation/routes.py``), since a mapped task has one queue for all its instances.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airflow_claude.errors import CatalogError

_QUEUE = re.compile(r"^[A-Za-z0-9_.:@-]{1,200}$")
_EXECUTOR = re.compile(r"^[A-Za-z0-9_.]{1,250}$")


@dataclass(frozen=True, order=True)
class Route:
    """An Airflow ``queue`` and ``executor`` for a tool's tasks; both None is Airflow's default."""

    queue: str | None = None
    executor: str | None = None

    def check(self, tool: str) -> Route:
        """This route, or a :class:`CatalogError` naming the tool and the bad field."""
        if self.queue is not None and not _QUEUE.match(self.queue):
            raise CatalogError(f"tool {tool!r}: queue {self.queue!r} must match {_QUEUE.pattern}")
        if self.executor is not None and not _EXECUTOR.match(self.executor):
            raise CatalogError(f"tool {tool!r}: executor {self.executor!r} must match {_EXECUTOR.pattern}")
        return self

    @property
    def is_default(self) -> bool:
        return self.queue is None and self.executor is None

    @property
    def name(self) -> str:
        """A task-id-safe name: ``""`` for the default route, else the executor and queue joined."""
        parts = [p for p in (self.executor, self.queue) if p]
        return re.sub(r"[^A-Za-z0-9_-]", "_", "_".join(parts))

    def label(self) -> str:
        """How logs and reports name it: ``queue 'gpu'`` / ``executor 'KubernetesExecutor'``."""
        if self.is_default:
            return "the default queue"
        parts = [f"queue {self.queue!r}" if self.queue else "", f"executor {self.executor!r}" if self.executor else ""]
        return " on ".join(p for p in parts if p)

    def task_kwargs(self) -> dict[str, Any]:
        """Operator arguments that send a task along this route (nothing for the default route)."""
        return {k: v for k, v in (("queue", self.queue), ("executor", self.executor)) if v is not None}


DEFAULT_ROUTE = Route()


def distinct_routes(routes: Iterable[Route]) -> list[Route]:
    """The routes other than the default, each once, sorted (DAGs built from them stay deterministic)."""
    return sorted({r for r in routes if not r.is_default}, key=lambda r: (r.name, r.queue or "", r.executor or ""))
