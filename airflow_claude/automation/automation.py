"""One automation: what its tasks share, and where each of its tasks is in the DAG.

Tasks keep only the automation's id (plain data, so the serialized DAG is the same on every
parse); the object itself lives in a per-process registry that the DAG file's parse fills.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from airflow_claude.automation.budget import RunBudget
from airflow_claude.automation.settings import AutomationSettings
from airflow_claude.catalog.catalog import Catalog
from airflow_claude.catalog.route import DEFAULT_ROUTE, Route
from airflow_claude.planner.calls import CallPolicy
from airflow_claude.planner.gateway import ModelGateway
from airflow_claude.planner.pricing import PriceTable

SAGA_GROUP = "saga"


def routed(name: str, route: Route) -> str:
    """A mapped task's local id on ``route``: ``steps`` on the default route, ``steps_<route>`` elsewhere."""
    return name if route.is_default else f"{name}_{route.name}"


@dataclass(frozen=True)
class GoalSource:
    """Where a run's goal comes from when the DAG author did not fix it: an upstream XCom or a param."""

    task_id: str | None = None
    key: str = "return_value"
    param: str = "goal"

    def doc(self, fixed: bool) -> str:
        """The plan task's ``doc_md`` line saying where the goal comes from (:func:`goal_param_of` reads it)."""
        if fixed:
            return "**Goal:** fixed in the DAG file."
        if self.task_id is not None:
            return f"**Goal:** the `{self.key}` XCom of task `{self.task_id}`."
        return f"**Goal:** the DAG param `{self.param}`."


_GOAL_PARAM_DOC = re.compile(r"\*\*Goal:\*\* the DAG param `([^`]+)`")


def goal_param_of(plan_task_doc: str | None) -> str | None:
    """The DAG param an automation reads its goal from, as its plan task's doc says (None: not a param)."""
    found = _GOAL_PARAM_DOC.search(plan_task_doc or "")
    return found.group(1) if found else None


@dataclass(frozen=True)
class Automation:
    """Everything the tasks of one automation share (built once per DAG file parse).

    ``group_id`` is the task group holding the automation in a user's DAG (None: the whole DAG).
    """

    dag_id: str
    catalog: Catalog
    settings: AutomationSettings
    goal: str | None
    conn_id: str
    model: str | None
    prices: PriceTable = field(default_factory=PriceTable)
    call_policy: CallPolicy = field(default_factory=CallPolicy)
    group_id: str | None = None
    goal_source: GoalSource = field(default_factory=GoalSource)

    @property
    def id(self) -> str:
        """Unique per automation: its memory, plan ids and registry entry use it."""
        return f"{self.dag_id}.{self.group_id}" if self.group_id else self.dag_id

    @property
    def rounds(self) -> int:
        return self.settings.max_replans + 1

    def task(self, name: str, round_number: int | None = None) -> str:
        """The full task id of ``name`` (``plan``, ``steps``, ...) in round ``round_number``, or at the top."""
        local = f"attempt_{round_number}.{name}" if round_number else name
        return f"{self.group_id}.{local}" if self.group_id else local

    def saga_task(self, name: str) -> str:
        return self.task(f"{SAGA_GROUP}.{name}")

    @property
    def routes(self) -> list[Route]:
        """The default route, then each queue/executor its catalog's tools name: one steps task each."""
        return [DEFAULT_ROUTE, *self.catalog.routes]

    def steps_task(self, route: Route, round_number: int) -> str:
        """The full id of the mapped task that runs a round's steps on ``route``."""
        return self.task(routed("steps", route), round_number)

    def undo_task(self, route: Route) -> str:
        """The full id of the mapped task that runs the saga's undos on ``route``."""
        return self.saga_task(routed("undo", route))

    def model_tasks(self) -> list[str]:
        return [self.task(name, r) for r in range(1, self.rounds + 1) for name in ("plan", "review")]

    def gateway(self, logger: Any, before_call: Any = None) -> ModelGateway:
        """The one path to Claude, from this automation's connection, policy and prices."""
        return ModelGateway.from_connection(
            self.conn_id,
            self.model,
            policy=self.call_policy,
            prices=self.prices,
            logger=logger,
            before_call=before_call,
        )

    def budget(self, context: Any, model: str) -> RunBudget:
        limit = Decimal(str(context["params"].get("budget_usd") or self.settings.budget_usd))
        return RunBudget(min(limit, Decimal(self.settings.budget_usd)), context, self.model_tasks(), self.prices, model)

    def stable_plan_id(self, goal: str) -> str:
        """The same for every run with this goal, so the plan cache can answer."""
        return f"{self._base()}_{hashlib.sha256(goal.encode()).hexdigest()[:8]}"

    def plan_id(self, run_id: str, round_number: int) -> str:
        return f"{self._base()}_{hashlib.sha256(run_id.encode()).hexdigest()[:8]}_v{round_number}"

    def _base(self) -> str:
        return re.sub(r"[^A-Za-z0-9_-]", "_", self.id)[:40]


_AUTOMATIONS: dict[str, Automation] = {}


def register_automation(automation: Automation) -> None:
    """Make ``automation`` findable by its id in this process (the DAG file's parse registers it)."""
    _AUTOMATIONS[automation.id] = automation


def automation_named(automation_id: str) -> Automation:
    """The automation a task belongs to."""
    try:
        return _AUTOMATIONS[automation_id]
    except KeyError:
        raise RuntimeError(
            f"automation {automation_id!r} is not defined in this process: its DAG file must call "
            "claude_automation() or claude_automation_group()"
        ) from None
