"""``claude_automation``: a DAG that plans, asks for approval, acts, reviews and reports, in one run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, TaskGroup, TriggerRule

from airflow_claude.automation.settings import AutomationSettings
from airflow_claude.automation.tasks import (
    Automation,
    CommitPlanOperator,
    LevelStepsOperator,
    PlanApprovalOperator,
    PlanRoundOperator,
    ReportOperator,
    ReviewOperator,
    RunPlanStepOperator,
    StepRetryPolicy,
    UndoPlanStepOperator,
    UndoStepsOperator,
    register_automation,
)
from airflow_claude.catalog.catalog import Catalog
from airflow_claude.factory.build import DEFAULT_START_DATE, TAG, data_interval_schedule
from airflow_claude.planner.calls import CallPolicy
from airflow_claude.planner.pricing import PriceTable

_DOC = """\
### airflow-claude automation

Type a goal in the trigger form. Claude proposes a plan of calls to the tools below; you approve
or reject it (task `attempt_1.approve`, *Required actions*); each step then runs as its own task
instance, labelled with its step id, under `attempt_1.level_<n>`; Claude reviews the outcome and
may re-plan (`attempt_2`). The `report` task's XCom and log hold the run report.

**Tools:** {tools}

**Limits:** at most {max_steps} steps, {max_levels} levels of dependent steps, {max_parallel} steps
side by side; {max_replans} re-plan(s); budget ${budget} per run.
"""


def claude_automation(
    dag_id: str,
    *,
    catalog: Catalog,
    goal: str | None = None,
    schedule: str | None = None,
    settings: AutomationSettings | None = None,
    conn_id: str = "anthropic_default",
    model: str | None = None,
    prices: PriceTable | None = None,
    call_policy: CallPolicy | None = None,
    claude_pool: str | None = None,
    steps_pool: str | None = None,
    start_date: datetime = DEFAULT_START_DATE,
    tags: Sequence[str] = (),
    description: str | None = None,
) -> DAG:
    """Build the automation DAG.

    ``goal`` fixes the goal (required for a ``schedule``); without it the trigger form asks for
    one. ``claude_pool`` puts every model call (plan and review tasks) in an Airflow pool, and
    ``steps_pool`` every step of a run-time plan (a pool cannot vary per mapped instance).
    """
    settings = settings or AutomationSettings()
    if schedule and not goal:
        raise ValueError(f"automation {dag_id!r}: a scheduled automation needs a fixed goal")
    automation = Automation(
        dag_id=dag_id,
        catalog=catalog,
        settings=settings,
        goal=goal,
        conn_id=conn_id,
        model=model,
        prices=prices or PriceTable(),
        call_policy=call_policy or CallPolicy(),
    )
    register_automation(automation)  # tasks carry its id, not the object: the serialized DAG stays plain data
    goal_param = Param(
        goal or "",
        type="string",
        minLength=1,
        maxLength=8000,
        title="Goal",
        description="What should this automation achieve? Claude plans it with the allowed tools only.",
    )
    params: dict[str, Param] = {
        "require_approval": Param(
            settings.require_approval,
            type="boolean",
            title="Require approval",
            description="Show the plan for approval before any step runs.",
        ),
        "max_steps": Param(
            settings.max_steps,
            type="integer",
            minimum=1,
            maximum=settings.max_steps,
            title="Step limit",
            description=f"At most this many steps (the automation allows {settings.max_steps}).",
        ),
        "budget_usd": Param(
            float(settings.budget_usd),
            type="number",
            exclusiveMinimum=0,
            maximum=float(settings.budget_usd),
            title="Budget (USD)",
            description="Model spend allowed for this run, across every call and retry.",
        ),
    }
    if not goal:
        params = {"goal": goal_param, **params}
    doc = _DOC.format(
        tools=", ".join(f"`{name}`" for name in catalog),
        max_steps=settings.max_steps,
        max_levels=settings.max_levels,
        max_parallel=settings.max_parallel,
        max_replans=settings.max_replans,
        budget=settings.budget_usd,
    )
    model_task: dict[str, Any] = {
        "retries": settings.claude_retries,
        "retry_delay": settings.claude_retry_delay,
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        **({"pool": claude_pool} if claude_pool else {}),
    }
    step_timeout = max((t.max_timeout_seconds or 0 for t in catalog.values()), default=0) or None
    with DAG(
        dag_id=dag_id,
        schedule=data_interval_schedule(schedule),
        start_date=start_date,
        catchup=False,
        max_active_runs=4,
        params=params,
        doc_md=doc,
        description=description or (goal or "Claude plans, Airflow runs")[:180],
        tags=sorted({TAG, "automation", *tags}),
    ) as dag:
        previous_review = None
        reviews = []
        for r in range(1, automation.rounds + 1):
            with TaskGroup(group_id=automation.group(r), tooltip=f"plan, approve, act, review (round {r})"):
                plan = PlanRoundOperator(
                    task_id="plan",
                    automation_id=automation.dag_id,
                    round_number=r,
                    **model_task,
                )
                approve = PlanApprovalOperator(task_id="approve", automation_id=automation.dag_id, round_number=r)
                commit = CommitPlanOperator(task_id="commit", automation_id=automation.dag_id, round_number=r)
                plan >> approve >> commit
                upstream: Any = commit
                for k in range(1, settings.max_levels + 1):
                    feed = LevelStepsOperator(
                        task_id=f"level_{k}_steps", automation_id=automation.dag_id, round_number=r, level=k
                    )
                    steps = RunPlanStepOperator.partial(
                        task_id=f"level_{k}",
                        automation_id=automation.dag_id,
                        round_number=r,
                        retries=settings.max_step_retries,
                        retry_delay=settings.step_retry_delay,
                        retry_policy=StepRetryPolicy(automation),
                        execution_timeout=timedelta(seconds=step_timeout) if step_timeout else None,
                        map_index_template="{{ step_id }}",
                        max_active_tis_per_dagrun=settings.max_parallel,
                        **({"pool": steps_pool} if steps_pool else {}),
                    ).expand(step=feed.output)
                    upstream >> feed
                    commit >> feed
                    upstream = steps
                review = ReviewOperator(
                    task_id="review",
                    automation_id=automation.dag_id,
                    round_number=r,
                    trigger_rule=TriggerRule.ALL_DONE,
                    **model_task,
                )
                upstream >> review
                commit >> review
            if previous_review is not None:
                previous_review >> plan
            previous_review = review
            reviews.append(review)
        report = ReportOperator(task_id="report", automation_id=automation.dag_id, trigger_rule=TriggerRule.ALL_DONE)
        with TaskGroup(group_id="saga", tooltip="undo finished mutating steps when the run fails, newest first"):
            previous: Any = reviews
            for r in range(automation.rounds, 0, -1):
                for k in range(settings.max_levels, 0, -1):
                    undo_feed = UndoStepsOperator(
                        task_id=f"r{r}_undo_level_{k}_steps",
                        automation_id=automation.dag_id,
                        round_number=r,
                        level=k,
                        trigger_rule=TriggerRule.ALL_DONE,
                    )
                    undo = UndoPlanStepOperator.partial(
                        task_id=f"r{r}_undo_level_{k}",
                        automation_id=automation.dag_id,
                        round_number=r,
                        retries=2,
                        retry_delay=settings.step_retry_delay,
                        map_index_template="{{ step_id }}",
                    ).expand(step=undo_feed.output)
                    previous >> undo_feed
                    previous = undo
        previous >> report
        reviews >> report
    return dag
