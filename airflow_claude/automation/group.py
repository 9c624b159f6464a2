"""``claude_automation_group``: an automation as a task group inside the user's own DAG.

Tasks before it can feed its goal (an upstream task's XCom) and tasks after it read its report.
Inside: one group ``attempt_<n>`` per round (plan -> approve -> commit -> steps -> review, with
``steps`` one mapped task instance per step), ``saga`` (to_undo -> undo) and ``report``.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import nullcontext
from datetime import timedelta
from typing import Any

from airflow.sdk import TaskGroup, TriggerRule
from airflow.sdk.definitions._internal.mixins import DependencyMixin
from airflow.sdk.definitions.xcom_arg import PlainXComArg, XComArg

from airflow_claude.automation.approval import PlanApprovalOperator
from airflow_claude.automation.automation import SAGA_GROUP, Automation, GoalSource, register_automation, routed
from airflow_claude.automation.commit import CommitPlanOperator
from airflow_claude.automation.planning import PlanRoundOperator
from airflow_claude.automation.report import ReportOperator
from airflow_claude.automation.review import ReviewOperator
from airflow_claude.automation.routes import RouteTicketsOperator
from airflow_claude.automation.saga import UndoListOperator, UndoStepOperator
from airflow_claude.automation.settings import AutomationSettings
from airflow_claude.automation.steps import RunPlanStepOperator, StepRetryPolicy, steps_alias
from airflow_claude.catalog.catalog import Catalog
from airflow_claude.catalog.route import Route
from airflow_claude.planner.calls import CallPolicy
from airflow_claude.planner.pricing import PriceTable
from airflow_claude.planner.retry import CLAUDE_RETRY_POLICY


class AutomationGroup(DependencyMixin):
    """The automation's task group, usable with ``>>``; ``report`` is the run report's XCom."""

    def __init__(self, group: TaskGroup | None, report: ReportOperator, automation_id: str) -> None:
        self.group = group
        self.report_task = report
        self.automation_id = automation_id

    @property
    def report(self) -> XComArg:
        """The run report (a dict, see ``contracts.Report``): pass it to a downstream task."""
        return self.report_task.output

    def _target(self) -> Any:
        return self.group if self.group is not None else self.report_task

    @property
    def roots(self) -> Iterable[DependencyMixin]:
        return self._target().roots

    @property
    def leaves(self) -> Iterable[DependencyMixin]:
        return [self.report_task]

    def set_upstream(self, other: Any, edge_modifier: Any = None) -> None:
        self._target().set_upstream(other, edge_modifier)

    def set_downstream(self, other: Any, edge_modifier: Any = None) -> None:
        self.report_task.set_downstream(other, edge_modifier)

    def update_relative(self, other: DependencyMixin, upstream: bool = True, edge_modifier: Any = None) -> None:
        self._target().update_relative(other, upstream, edge_modifier)


def claude_automation_group(
    group_id: str = "claude",
    *,
    catalog: Catalog,
    goal: str | XComArg | None = None,
    goal_param: str = "goal",
    settings: AutomationSettings | None = None,
    conn_id: str = "anthropic_default",
    model: str | None = None,
    prices: PriceTable | None = None,
    call_policy: CallPolicy | None = None,
    claude_pool: str | None = None,
    steps_pool: str | None = None,
) -> AutomationGroup:
    """Add an automation to the DAG being defined, as the task group ``group_id``.

    ``goal`` is a fixed text, an upstream task's output (``extract.output`` or ``task.output["key"]``;
    the task becomes upstream of the group), or None: the DAG param ``goal_param``. Run params named
    ``require_approval``, ``max_steps`` and ``budget_usd``, when the DAG declares them, tighten the
    settings per run. ``claude_pool`` holds every model call, ``steps_pool`` every step.
    """
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    dag = DagContext.get_current()
    if dag is None:
        raise ValueError(f"claude_automation_group({group_id!r}) must be called inside a DAG definition")
    return _build(
        dag,
        group_id,
        catalog=catalog,
        goal=goal,
        goal_param=goal_param,
        settings=settings or AutomationSettings(),
        conn_id=conn_id,
        model=model,
        prices=prices,
        call_policy=call_policy,
        claude_pool=claude_pool,
        steps_pool=steps_pool,
    )


def _build(
    dag: Any,
    group_id: str | None,
    *,
    catalog: Catalog,
    goal: str | XComArg | None,
    goal_param: str,
    settings: AutomationSettings,
    conn_id: str,
    model: str | None,
    prices: PriceTable | None,
    call_policy: CallPolicy | None,
    claude_pool: str | None,
    steps_pool: str | None,
) -> AutomationGroup:
    """Build the tasks into ``dag``: inside a task group ``group_id``, or at the top when None."""
    upstream_goal: Any = None
    source = GoalSource(param=goal_param)
    if isinstance(goal, XComArg):
        if not isinstance(goal, PlainXComArg) or getattr(goal.operator, "is_mapped", False):
            raise ValueError(f"automation {group_id!r}: goal must be the output of one unmapped task")
        upstream_goal = goal.operator
        source = GoalSource(task_id=goal.operator.task_id, key=goal.key)
        goal = None
    elif goal is None and goal_param not in dag.params:
        raise ValueError(
            f"automation {group_id!r} in DAG {dag.dag_id!r}: no goal; pass goal=..., or declare the DAG param "
            f"{goal_param!r}"
        )
    automation = Automation(
        dag_id=dag.dag_id,
        catalog=catalog,
        settings=settings,
        goal=goal,
        conn_id=conn_id,
        model=model,
        prices=prices or PriceTable(),
        call_policy=call_policy or CallPolicy(),
        group_id=group_id,
        goal_source=source,
    )
    register_automation(automation)  # tasks carry its id, not the object: the serialized DAG stays plain data
    ids: dict[str, Any] = {"automation_id": automation.id}
    model_task: dict[str, Any] = {
        "retries": settings.claude_retries,
        "retry_delay": settings.claude_retry_delay,
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "retry_policy": CLAUDE_RETRY_POLICY,
        **({"pool": claude_pool} if claude_pool else {}),
    }
    step_timeout = max((t.max_timeout_seconds or 0 for t in catalog.values()), default=0) or None
    writes_assets = any(t.outlets for t in catalog.values())  # an alias only where a step can write an Asset
    outer = TaskGroup(group_id=group_id, tooltip="Claude plans, Airflow runs") if group_id else None
    with outer if outer is not None else nullcontext():
        reviews: list[Any] = []
        for r in range(1, automation.rounds + 1):
            with TaskGroup(group_id=f"attempt_{r}", tooltip=f"plan, approve, act, review (round {r})"):
                plan = PlanRoundOperator(
                    task_id="plan", round_number=r, doc_md=source.doc(goal is not None), **ids, **model_task
                )
                approve = PlanApprovalOperator(task_id="approve", round_number=r, **ids)
                commit = CommitPlanOperator(task_id="commit", round_number=r, **ids)
                review = ReviewOperator(
                    task_id="review", round_number=r, trigger_rule=TriggerRule.ALL_DONE, **ids, **model_task
                )
                for route in automation.routes:  # one mapped task per queue/executor the tools name
                    steps = RunPlanStepOperator.partial(
                        task_id=routed("steps", route),
                        round_number=r,
                        retries=settings.max_step_retries,
                        retry_delay=settings.step_retry_delay,
                        retry_policy=StepRetryPolicy(automation.id),
                        execution_timeout=timedelta(seconds=step_timeout) if step_timeout else None,
                        map_index_template="{{ step_id }}",
                        max_active_tis_per_dagrun=settings.max_parallel,
                        **ids,
                        **route.task_kwargs(),
                        **({"pool": steps_pool} if steps_pool else {}),
                        **({"outlets": [steps_alias(automation.id)]} if writes_assets else {}),
                    ).expand(ticket=_tickets(commit, route, automation.task("commit", r), ids))
                    steps >> review
                plan >> approve >> commit >> review
            if reviews:
                reviews[-1] >> plan
            elif upstream_goal is not None:
                upstream_goal >> plan
            reviews.append(review)
        with TaskGroup(group_id=SAGA_GROUP, tooltip="undo finished mutating steps when the run fails, newest first"):
            to_undo = UndoListOperator(task_id="to_undo", trigger_rule=TriggerRule.ALL_DONE, **ids)
            undos = [
                UndoStepOperator.partial(
                    task_id=routed("undo", route),
                    retries=2,
                    retry_delay=settings.step_retry_delay,
                    map_index_template="{{ step_id }}",
                    **ids,
                    **route.task_kwargs(),
                ).expand(ticket=_tickets(to_undo, route, automation.saga_task("to_undo"), ids))
                for route in automation.routes
            ]
            reviews >> to_undo
        report = ReportOperator(task_id="report", trigger_rule=TriggerRule.ALL_DONE, **ids)
        undos >> report
        to_undo >> report
        reviews >> report
    return AutomationGroup(outer, report, automation.id)


def _tickets(producer: Any, route: Route, producer_id: str, ids: dict[str, Any]) -> Any:
    """What a route's mapped task maps over: the producer's return value, or its ``route_<name>`` task's."""
    if route.is_default:
        return producer.output
    hand = RouteTicketsOperator(task_id=f"route_{route.name}", source_task=producer_id, route_name=route.name, **ids)
    producer >> hand
    return hand.output
