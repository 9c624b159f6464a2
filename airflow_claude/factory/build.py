"""Compile plan files into Airflow DAGs: one task per step, true dependencies, retries per step.

:func:`load_plan_dags` is the one entry point. It is deterministic (same files, same
serialized DAGs, so Airflow creates no new DAG version), honours the parsing context (a
worker builds only its own plan), and never raises: an invalid plan becomes a visible
placeholder DAG carrying its full error, and every good plan beside it still loads.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, Param, TaskGroup, TriggerRule, get_parsing_context

from airflow_claude.catalog.catalog import Catalog
from airflow_claude.catalog.tool import OperatorTool, PythonTool
from airflow_claude.errors import Code, PlanIssue
from airflow_claude.factory.docs import invalid_doc, plan_doc, step_doc
from airflow_claude.plan import graph
from airflow_claude.plan.limits import DEFAULT_LIMITS, PlanLimits
from airflow_claude.plan.loader import load_plan_file
from airflow_claude.plan.model import ID_PATTERN, Plan
from airflow_claude.runtime.compensate import SAGA_GROUP, CompensateStepOperator, SagaOutcomeOperator
from airflow_claude.runtime.invalid import InvalidPlanOperator
from airflow_claude.runtime.operator_step import build_operator_task
from airflow_claude.runtime.provenance import StepIdentity
from airflow_claude.runtime.step import PlanStepOperator

log = logging.getLogger(__name__)

#: A fixed start date keeps the serialized DAG identical across parses (no ``now()`` anywhere).
DEFAULT_START_DATE = datetime(2024, 1, 1, tzinfo=UTC)
TAG = "airflow-claude"
INVALID_TAG = "airflow-claude:invalid-plan"


def load_plan_dags(
    plans_dir: str | Path,
    catalog: Catalog,
    *,
    dag_id_prefix: str = "",
    limits: PlanLimits = DEFAULT_LIMITS,
    retry_delay: timedelta = timedelta(seconds=30),
    start_date: datetime = DEFAULT_START_DATE,
    tags: Sequence[str] = (),
    default_args: Mapping[str, Any] | None = None,
    compensate: bool = True,
) -> dict[str, DAG]:
    """Build one DAG per ``*.json`` plan in ``plans_dir`` (sorted), keyed by DAG id.

    Call it from a DAG file: ``globals().update(load_plan_dags(Path(__file__).parent / "plans", catalog))``.
    The DAG id is ``dag_id_prefix + plan.id``; a plan file must be named ``<plan id>.json``.
    With ``compensate`` (the default), a plan with compensable steps gets a ``saga`` task group
    that undoes finished mutating steps when the run fails.
    """
    folder = Path(plans_dir)
    files = sorted(folder.glob("*.json"))
    wanted = get_parsing_context().dag_id
    if wanted and wanted.startswith(dag_id_prefix):
        own = folder / f"{wanted[len(dag_id_prefix) :]}.json"
        if own in files:
            files = [own]  # a worker running a task of one plan builds only that plan
    options = _Options(
        catalog, dag_id_prefix, limits, retry_delay, start_date, tuple(tags), dict(default_args or {}), compensate
    )
    dags: dict[str, DAG] = {}
    for path in files:
        dag = _load_one(path, options)
        dags[dag.dag_id] = dag
    return dags


@dataclass(frozen=True)
class _Options:
    catalog: Catalog
    prefix: str
    limits: PlanLimits
    retry_delay: timedelta
    start_date: datetime
    tags: tuple[str, ...]
    default_args: dict[str, Any]
    compensate: bool = True


def _load_one(path: Path, options: _Options) -> DAG:
    result = load_plan_file(path, options.catalog, limits=options.limits)
    if result.ok:
        assert result.plan is not None
        try:
            return compile_plan(result.plan, options, source=path.name, digest=result.plan_hash)
        except Exception as exc:  # a DAG author's operator may reject arguments: show it, never crash
            issue = PlanIssue(
                Code.COMPILE_FAILED, f"{type(exc).__name__}: {exc}", file=str(path), plan_id=result.plan.id
            )
            return _invalid_dag(path, [issue], options)
    return _invalid_dag(path, result.issues, options)


def compile_plan(plan: Plan, options: _Options, *, source: str, digest: str | None = None) -> DAG:
    """Compile one validated plan. Deterministic: the same plan gives the same serialized DAG.

    ``digest`` is ``plan.hash`` when the caller has it already (validation computes it).
    """
    catalog = options.catalog
    digest = digest or plan.hash
    with DAG(
        dag_id=options.prefix + plan.id,
        schedule=data_interval_schedule(plan.schedule),
        params={name: Param(**spec) for name, spec in sorted(plan.params.items())},
        start_date=options.start_date,
        catchup=False,
        description=_one_line(plan.goal),
        doc_md=plan_doc(plan, digest, catalog.fingerprint, source),
        tags=sorted({TAG, *options.tags}),
        default_args={"retry_delay": options.retry_delay, **options.default_args},
    ) as dag:
        tasks: dict[str, Any] = {}
        for step in plan.steps:
            tool = catalog[step.tool]
            identity = StepIdentity(plan.id, digest, step.id, tool.name, tool.version, catalog.fingerprint)
            timeout = step.timeout_seconds or tool.max_timeout_seconds
            common: dict[str, Any] = {
                "task_id": step.id,
                "retries": step.retries if step.retries is not None else tool.default_retries,
                "doc_md": step_doc(plan, digest, step, tool),
            }
            if timeout:
                common["execution_timeout"] = timedelta(seconds=timeout)
            if tool.pool:
                common["pool"] = tool.pool
            common.update(tool.route.task_kwargs())  # the tool's queue/executor: its workers
            if tool.inlets:  # the tool's declared Assets (sorted): lineage, and DAGs scheduled on them
                common["inlets"] = list(tool.inlets)
            if tool.outlets:
                common["outlets"] = list(tool.outlets)
            if isinstance(tool, PythonTool):
                tasks[step.id] = PlanStepOperator.for_step(tool=tool, step_args=step.args, identity=identity, **common)
            elif isinstance(tool, OperatorTool):
                tasks[step.id] = build_operator_task(tool, step, identity, **common)
            else:  # pragma: no cover - the catalog only holds these two kinds
                raise TypeError(f"unsupported tool kind {tool.kind!r}")
        for step in plan.steps:
            if step.depends_on:  # one call per task, not per edge: Airflow checks the DAGs of every call's tasks
                tasks[step.id].set_upstream([tasks[dependency] for dependency in step.depends_on])
        if options.compensate:
            _add_saga(plan, catalog, tasks, digest)
    log.debug("compiled plan %s (%s) into DAG %s", plan.id, digest, dag.dag_id)
    return dag


def data_interval_schedule(schedule: str | None) -> Any:
    """A cron schedule whose runs span the time between them, so ``run.data_interval_*`` mean something.

    Airflow 3 reads a cron string as a trigger (a run's interval is a single instant); a data
    pipeline wants each run to cover the interval since the previous one: ``@daily`` run for
    2026-11-01 covers that day, and a backfill of a month gives one run per day.
    """
    if schedule is None or schedule in ("@once", "@continuous"):
        return schedule
    return CronDataIntervalTimetable(schedule, timezone="UTC")


def _add_saga(plan: Plan, catalog: Catalog, tasks: dict[str, Any], digest: str) -> None:
    """Undo tasks for finished mutating steps, in reverse dependency order, and the outcome task."""
    compensable = [s for s in plan.steps if catalog[s.tool].compensation is not None]
    if not compensable:
        return
    ancestors = graph.ancestors({s.id: s.depends_on for s in plan.steps})
    compensable_ids = {s.id for s in compensable}
    step_ids = tuple(s.id for s in plan.steps)
    with TaskGroup(SAGA_GROUP, tooltip="compensation when the run fails"):
        # one join after every step keeps the edge count linear, even for a 1,000-step plan
        steps_done = EmptyOperator(task_id="steps_done", trigger_rule=TriggerRule.ALL_DONE)
        list(tasks.values()) >> steps_done
        undo: dict[str, Any] = {}
        for step in compensable:
            tool = catalog[step.tool]
            identity = StepIdentity(plan.id, digest, step.id, tool.name, tool.version, catalog.fingerprint)
            undo_tool = catalog[tool.compensation.tool]  # type: ignore[union-attr]
            limits: dict[str, Any] = {"retries": undo_tool.default_retries}  # an undo is retried like a step
            if undo_tool.max_timeout_seconds:
                limits["execution_timeout"] = timedelta(seconds=undo_tool.max_timeout_seconds)
            if undo_tool.pool:
                limits["pool"] = undo_tool.pool
            limits.update(undo_tool.route.task_kwargs())  # an undo runs where its compensating tool runs
            undo[step.id] = CompensateStepOperator.for_step(
                task_id=f"undo_{step.id}",
                catalog=catalog,
                tool=tool,
                step_id=step.id,
                step_args=step.args,
                identity=identity,
                step_task_ids=step_ids,
                trigger_rule=TriggerRule.ALL_DONE,
                doc_md=f"Undo step `{step.id}` with tool `{tool.compensation.tool}` if the run fails.",  # type: ignore[union-attr]
                **limits,
            )
            steps_done >> undo[step.id]
        for later in compensable:
            earlier = ancestors[later.id] & compensable_ids
            # only the nearest compensable ancestors: the rest follow through them
            nearest = earlier - set().union(*(ancestors[a] for a in earlier)) if earlier else set()
            for sid in sorted(nearest):
                undo[later.id] >> undo[sid]  # undo the later effect first
        outcome = SagaOutcomeOperator(
            task_id="outcome",
            step_task_ids=step_ids,
            undo_task_ids={sid: f"{SAGA_GROUP}.undo_{sid}" for sid in undo},
            plan_id=plan.id,
            trigger_rule=TriggerRule.ALL_DONE,
        )
        list(undo.values()) >> outcome
        steps_done >> outcome


def _invalid_dag(path: Path, issues: list[PlanIssue], options: _Options) -> DAG:
    """A placeholder DAG that shows the plan's errors in the UI and refuses to run."""
    plan_id = next((i.plan_id for i in issues if i.plan_id and re.fullmatch(ID_PATTERN, i.plan_id)), None)
    stem_ok = re.fullmatch(ID_PATTERN, path.stem) is not None
    if plan_id == path.stem or (plan_id is None and stem_ok):
        dag_id = options.prefix + path.stem
    else:
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", path.stem)[:40]
        dag_id = f"{options.prefix}invalid_{safe}_{hashlib.sha256(path.name.encode()).hexdigest()[:8]}"
    log.warning("invalid plan %s: %d problem(s); it is shown as DAG %s and does not run", path, len(issues), dag_id)
    for issue in issues:
        log.warning("  %s", issue)
    problems = "\n".join(str(issue) for issue in issues)
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=options.start_date,
        catchup=False,
        description=f"INVALID PLAN ({len(issues)} problems): {_one_line(issues[0].message)}",
        doc_md=invalid_doc(path.name, issues),
        tags=sorted({TAG, INVALID_TAG, *options.tags}),
        is_paused_upon_creation=True,
    ) as dag:
        InvalidPlanOperator(task_id="plan_invalid", problems=problems, doc_md=invalid_doc(path.name, issues))
    return dag


def _one_line(text: str, limit: int = 180) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
