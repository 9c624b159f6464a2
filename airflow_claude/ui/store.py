"""The read side's database half: the rows of Airflow's metadata DB a run page needs, read with Airflow's ORM.

Runs belong on the list when their DAG carries the ``airflow-claude`` tag or when an automation task
pushed a ``report`` or ``goal`` XCom (automation task groups live in users' own DAGs, untagged).
Everything is turned into :class:`~airflow_claude.ui.runs.RunData` and built by the pure code there.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

from airflow.models.dag import DagModel, DagTag
from airflow.models.dagrun import DagRun
from airflow.models.task_state_store import TaskStateStoreModel
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from airflow_claude.automation.contracts import (
    COMMITTED_KEY,
    GOAL_KEY,
    OUTCOME_KEY,
    REPORT_KEY,
    RETURN_KEY,
    USAGE_KEY,
)
from airflow_claude.factory.build import TAG
from airflow_claude.plan.model import Plan
from airflow_claude.runtime.ledger import LEDGER_PREFIX
from airflow_claude.runtime.provenance import PROVENANCE_XCOM_KEY
from airflow_claude.ui.models import RunDetail, RunSummary
from airflow_claude.ui.runs import (
    DagTask,
    PreviousVersion,
    RunData,
    TaskRow,
    automation_prefixes,
    build_detail,
    build_summary,
    compiled_plan_ref,
    doc_field,
    rebuilt_plan,
)

log = logging.getLogger(__name__)

#: XComs the list needs (no step outputs: those can be large); the run page reads them all.
_LIST_KEYS = (REPORT_KEY, GOAL_KEY, COMMITTED_KEY, USAGE_KEY, OUTCOME_KEY, PROVENANCE_XCOM_KEY)
LIST_LIMIT = 200

_dag_bag: Any = None


def dag_bag() -> Any:
    """One DB DAG bag per process (it caches serialized DAG versions)."""
    global _dag_bag
    if _dag_bag is None:
        from airflow.models.dagbag import DBDagBag

        _dag_bag = DBDagBag()
    return _dag_bag


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _value(row: XComModel) -> Any:
    value = XComModel.deserialize_value(row)
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _run_data(run: DagRun, tags: list[str]) -> RunData:
    return RunData(
        dag_id=run.dag_id,
        run_id=run.run_id,
        state=str(run.state.value if hasattr(run.state, "value") else run.state) if run.state else None,
        start_date=_iso(run.start_date or run.queued_at or run.run_after),
        conf=dict(run.conf or {}),
        tags=tags,
        data_interval=(
            (run.data_interval_start.isoformat(), run.data_interval_end.isoformat())
            if run.data_interval_start is not None and run.data_interval_end is not None
            else None
        ),
    )


def _fill(session: Session, runs: dict[int, RunData], *, all_xcoms: bool) -> None:
    """Task instances and XComs of the runs (by dag_run id) into their RunData."""
    if not runs:
        return
    ids = list(runs)
    by_key = {(d.dag_id, d.run_id): d for d in runs.values()}
    rows = session.execute(
        select(
            TaskInstance.dag_id,
            TaskInstance.run_id,
            TaskInstance.task_id,
            TaskInstance.map_index,
            TaskInstance.state,
            TaskInstance.try_number,
            TaskInstance.queue,
        ).where(
            or_(*(and_(TaskInstance.dag_id == d, TaskInstance.run_id == r) for d, r in by_key)),
        )
    )
    for dag_id, run_id, task_id, map_index, state, try_number, queue in rows:
        state_text = str(state.value if hasattr(state, "value") else state) if state else None
        by_key[(dag_id, run_id)].tasks[(task_id, map_index)] = TaskRow(state_text, int(try_number or 0), queue)
    query = select(XComModel).where(XComModel.dag_run_id.in_(ids))
    if not all_xcoms:
        query = query.where(
            or_(
                XComModel.key.in_(_LIST_KEYS),
                and_(
                    XComModel.key == RETURN_KEY, or_(XComModel.task_id.like("%plan"), XComModel.task_id.like("%review"))
                ),
            )
        )
    for row in session.scalars(query):
        runs[row.dag_run_id].xcoms[(row.task_id, row.map_index, row.key)] = _value(row)


def _tags(session: Session, dag_ids: set[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for dag_id, name in session.execute(select(DagTag.dag_id, DagTag.name).where(DagTag.dag_id.in_(dag_ids))):
        found[dag_id].append(name)
    return found


def list_runs(
    session: Session, allowed: set[str], dag_id: str | None = None, limit: int = LIST_LIMIT
) -> list[RunSummary]:
    """The runs of readable DAGs that are automation or compiled-plan runs, newest first."""
    dag_ids = {dag_id} & allowed if dag_id else allowed
    if not dag_ids:
        return []
    tagged = select(DagTag.dag_id).where(DagTag.name == TAG)
    reported = select(XComModel.dag_run_id).where(XComModel.key.in_([REPORT_KEY, GOAL_KEY]))
    query = (
        select(DagRun)
        .where(DagRun.dag_id.in_(dag_ids), or_(DagRun.dag_id.in_(tagged), DagRun.id.in_(reported)))
        .order_by(DagRun.run_after.desc(), DagRun.id.desc())
        .limit(limit)
    )
    found = list(session.scalars(query))
    tags = _tags(session, {r.dag_id for r in found})
    runs = {r.id: _run_data(r, tags.get(r.dag_id, [])) for r in found}
    _fill(session, runs, all_xcoms=False)
    described = select(DagModel.dag_id, DagModel.description).where(DagModel.dag_id.in_({r.dag_id for r in found}))
    descriptions = {dag: text for dag, text in session.execute(described)}
    summaries = []
    for data in runs.values():
        data.dag_description = descriptions.get(data.dag_id)
        summaries.append(build_summary(data))
    return summaries


def _find_run(session: Session, dag_id: str, run_id: str) -> DagRun | None:
    return session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))


def load_run(session: Session, dag_id: str, run_id: str, *, with_history: bool = False) -> RunData | None:
    """Everything about one run, or None when there is no such run.

    ``with_history``: also the compiled plan's previous version (the run page's diff), which reads
    earlier serialized DAG versions; export and replay do not need it.
    """
    run = _find_run(session, dag_id, run_id)
    if run is None:
        return None
    data = _run_data(run, _tags(session, {dag_id}).get(dag_id, []))
    _fill(session, {run.id: data}, all_xcoms=True)
    for row in session.scalars(
        select(TaskStateStoreModel).where(
            TaskStateStoreModel.dag_run_id == run.id, TaskStateStoreModel.key.startswith(LEDGER_PREFIX)
        )
    ):
        try:
            entry = json.loads(row.value)
        except ValueError:
            continue
        data.ledger.setdefault((row.task_id, row.map_index), {})[row.key[len(LEDGER_PREFIX) :]] = entry
    _read_dag(session, run, data)
    plan_hash = compiled_plan_ref(data)[1] if with_history and not automation_prefixes(data) else None
    if plan_hash:
        data.previous_version = previous_version(session, run, str(plan_hash))
    return data


def _read_dag(session: Session, run: DagRun, data: RunData) -> None:
    """The run's serialized DAG (its doc and tasks), and the compiled plan's file when it is reachable."""
    try:
        dag = dag_bag().get_dag_for_run(run, session=session)
    except Exception:  # a DAG that no longer deserializes: the page shows what XCom holds
        log.warning("cannot read the serialized DAG of %s", run.dag_id, exc_info=True)
        dag = None
    if dag is not None:
        data.dag_doc = dag.doc_md
        data.dag_description = dag.description
        data.dag_tasks = _dag_tasks(dag)
    if automation_prefixes(data):
        return
    plan_id, plan_hash = compiled_plan_ref(data)
    if plan_id and plan_hash:
        fileloc = session.scalar(select(DagModel.fileloc).where(DagModel.dag_id == run.dag_id))
        data.plan_file = find_plan_file(fileloc, str(plan_id), str(plan_hash))


def _dag_tasks(dag: Any) -> dict[str, DagTask]:
    return {
        task_id: DagTask(
            upstream=sorted(task.upstream_task_ids), doc_md=getattr(task, "doc_md", None), task_type=task.task_type
        )
        for task_id, task in dag.task_dict.items()
    }


def previous_version(session: Session, run: DagRun, plan_hash: str, limit: int = 20) -> PreviousVersion | None:
    """The latest DAG version before the run's that compiled another plan, its plan rebuilt for a diff.

    A DAG gets a new version for other reasons too (the loader's code, a tool's route), so up to
    ``limit`` earlier versions are read for one whose DAG doc names another plan hash.
    """
    from airflow.models.dag_version import DagVersion

    version_id = getattr(run, "created_dag_version_id", None)
    current = session.get(DagVersion, version_id) if version_id is not None else None
    if current is None:
        return None
    older = session.scalars(
        select(DagVersion)
        .where(DagVersion.dag_id == run.dag_id, DagVersion.version_number < current.version_number)
        .order_by(DagVersion.version_number.desc())
        .limit(limit)
    )
    for version in older:
        try:
            dag = dag_bag().get_dag(version.id, session=session)
        except Exception:  # a version that no longer deserializes: look further back
            log.warning("cannot read version %s of %s", version.version_number, run.dag_id, exc_info=True)
            continue
        other = doc_field(dag.doc_md, "plan hash") if dag is not None else None
        if dag is not None and other and other != plan_hash:
            then = RunData(dag_id=run.dag_id, run_id="", dag_doc=dag.doc_md, dag_tasks=_dag_tasks(dag))
            plan = rebuilt_plan(then, doc_field(dag.doc_md, "plan id"))
            return PreviousVersion(plan_hash=other, dag_version=version.version_number, plan=plan)
    return None


def find_plan_file(fileloc: str | None, plan_id: str, plan_hash: str) -> dict[str, Any] | None:
    """The compiled plan's own file, found next to its DAG file, when its hash is the runs' plan hash.

    The api-server sees the DAG folder only in some deployments (a local bundle on the same disk);
    elsewhere the run page rebuilds the plan from the serialized DAG, marked inexact.
    """
    if not fileloc:
        return None
    base = Path(fileloc).parent
    name = f"{plan_id}.json"
    try:
        candidates = [base / "plans" / name, base / name, *sorted(base.glob(f"*/{name}"))]
    except OSError:
        return None
    for path in dict.fromkeys(candidates):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if Plan.model_validate(data).hash == plan_hash:
                return data if isinstance(data, dict) else None
        except (OSError, ValueError):
            continue
    return None


def run_detail(session: Session, dag_id: str, run_id: str) -> RunDetail | None:
    data = load_run(session, dag_id, run_id, with_history=True)
    if data is None:
        return None
    detail = build_detail(data)
    detail.replays = find_replays(session, dag_id, run_id)
    return detail


def find_replays(session: Session, dag_id: str, run_id: str, limit: int = 500) -> list[dict[str, str]]:
    """Runs that replayed this one: replay runs (``replay__*``) whose conf names it as their source."""
    from airflow_claude.runtime.replay import REPLAY_CONF_KEY

    found = []
    query = select(DagRun.dag_id, DagRun.run_id, DagRun.conf).where(DagRun.run_id.like("replay\\_\\_%", escape="\\"))
    for other_dag, other_run, conf in session.execute(query.order_by(DagRun.id.desc()).limit(limit)):
        request = (conf or {}).get(REPLAY_CONF_KEY) if isinstance(conf, dict) else None
        source = request.get("source") if isinstance(request, dict) else None
        if isinstance(source, dict) and source.get("dag_id") == dag_id and source.get("run_id") == run_id:
            found.append({"dag_id": other_dag, "run_id": other_run})
    return found
