"""``claude_automation``: the one-line form, a whole DAG holding one automation (built on the task group)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, Param

from airflow_claude.automation.group import _build
from airflow_claude.automation.settings import AutomationSettings
from airflow_claude.catalog.catalog import Catalog
from airflow_claude.factory.build import DEFAULT_START_DATE, TAG, data_interval_schedule
from airflow_claude.planner.calls import CallPolicy
from airflow_claude.planner.pricing import PriceTable

_DOC = """\
### airflow-claude automation

Type a goal in the trigger form. Claude proposes a plan of calls to the tools below; you approve
or reject it (task `attempt_1.approve`, *Required actions*); each step then runs as its own task
instance of `attempt_1.steps`, labelled with its step id, as soon as the steps it needs have
succeeded; Claude reviews the outcome and may re-plan (`attempt_2`). The `report` task's XCom and
log hold the run report.

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
    catchup: bool = False,
    max_active_runs: int = 4,
    params: Mapping[str, Param] | None = None,
    **dag_kwargs: Any,
) -> DAG:
    """Build a DAG that is one automation, with a trigger form for its goal and per-run limits.

    ``goal`` fixes the goal (required for a ``schedule``); without it the trigger form asks for
    one. ``params`` adds the DAG author's own params to the form; ``dag_kwargs`` go to ``DAG``.
    To put an automation between tasks of your own, use ``claude_automation_group`` instead.
    """
    settings = settings or AutomationSettings()
    if schedule and not goal:
        raise ValueError(f"automation {dag_id!r}: a scheduled automation needs a fixed goal")
    form: dict[str, Param] = {
        **({} if goal else {"goal": goal_param(goal)}),
        **run_limit_params(settings),
        **dict(params or {}),
    }
    doc = _DOC.format(
        tools=", ".join(f"`{name}`" for name in catalog),
        max_steps=settings.max_steps,
        max_levels=settings.max_levels,
        max_parallel=settings.max_parallel,
        max_replans=settings.max_replans,
        budget=settings.budget_usd,
    )
    with DAG(
        dag_id=dag_id,
        schedule=data_interval_schedule(schedule),
        start_date=start_date,
        catchup=catchup,
        max_active_runs=max_active_runs,
        params=form,
        doc_md=doc,
        description=description or (goal or "Claude plans, Airflow runs")[:180],
        tags=sorted({TAG, "automation", *tags}),
        **dag_kwargs,
    ) as dag:
        _build(
            dag,
            None,
            catalog=catalog,
            goal=goal,
            goal_param="goal",
            settings=settings,
            conn_id=conn_id,
            model=model,
            prices=prices,
            call_policy=call_policy,
            claude_pool=claude_pool,
            steps_pool=steps_pool,
        )
    return dag


def goal_param(default: str | None = None) -> Param:
    """The trigger form's goal field."""
    return Param(
        default or "",
        type="string",
        minLength=1,
        maxLength=8000,
        title="Goal",
        description="What should this automation achieve? Claude plans it with the allowed tools only.",
    )


def run_limit_params(settings: AutomationSettings) -> dict[str, Param]:
    """Trigger-form fields that tighten the settings for one run (never loosen them)."""
    return {
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
