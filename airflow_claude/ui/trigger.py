"""``POST /api/replay``: start a new run of a stored plan (by hash), with no model call.

The plan comes from the source run (the round whose plan has that hash) or from the request,
whose hash must match. The target holds an automation (its DAG has an ``attempt_<n>.plan`` task):
the conf carries the plan and the worker side (:mod:`airflow_claude.automation.replay`)
re-validates it against the current catalog. Or the target is a compiled plan's DAG running that
very hash: the conf names the hash and each step checks it (:mod:`airflow_claude.runtime.replay`).
The run is created as Airflow's own trigger endpoint creates one (same body model, same
``create_dagrun`` call).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, status
from pydantic import ValidationError
from sqlalchemy import select

from airflow_claude.automation.automation import goal_param_of
from airflow_claude.automation.contracts import COMMITTED_KEY, RETURN_KEY
from airflow_claude.plan.model import Plan
from airflow_claude.runtime.replay import REPLAY_CONF_KEY, ReplayRequest
from airflow_claude.ui import access
from airflow_claude.ui.runs import (
    DagTask,
    RunData,
    automation_prefix,
    automation_prefixes,
    compiled_plan_ref,
    doc_field,
)


def plan_with_hash(data: RunData, plan_hash: str) -> dict[str, Any] | None:
    """The plan of ``data`` whose hash is ``plan_hash``: a committed or proposed plan, or the compiled plan's file."""
    for (_, _, key), value in sorted(data.xcoms.items()):
        if key in (COMMITTED_KEY, RETURN_KEY) and isinstance(value, dict) and value.get("plan_hash") == plan_hash:
            plan = value.get("plan")
            if isinstance(plan, dict):
                return plan
    if data.plan_file is not None and Plan.model_validate(data.plan_file).hash == plan_hash:
        return data.plan_file
    return None


def automation_id_of(dag_id: str, prefix: str) -> str:
    """The automation's id from its task-group prefix (``Automation.id``)."""
    return f"{dag_id}.{prefix.rstrip('.')}" if prefix else dag_id


def _latest_dag(session: Any, dag_id: str) -> Any:
    """``dag_id``'s latest serialized DAG; 404 when the DAG is unknown."""
    from airflow_claude.ui.store import dag_bag

    dag = dag_bag().get_latest_version_of_dag(dag_id, session=session)
    if dag is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"DAG '{dag_id}' not found")
    return dag


def _source_run(session: Any, manager: Any, user: Any, source: dict[str, Any]) -> RunData:
    from airflow_claude.ui import store

    dag_id, run_id = source.get("dag_id"), source.get("run_id")
    if not dag_id or not run_id:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "source needs dag_id and run_id")
    access.require(manager, user, "GET", dag_id)
    data = store.load_run(session, dag_id, run_id)
    if data is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No run '{run_id}' of DAG '{dag_id}'")
    return data


def _checked_plan(body: Any) -> dict[str, Any]:
    """The request's own plan, when it hashes to the requested hash."""
    try:
        actual = Plan.model_validate(body.plan).hash
    except ValidationError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"plan is not a valid plan: {exc}") from None
    if actual != body.plan_hash:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"plan hash is {actual}, not {body.plan_hash}")
    return dict(body.plan)


def start_replay(session: Any, manager: Any, user: Any, body: Any, *, triggered_from_ui: bool) -> dict[str, Any]:
    """Check, then trigger the replay run; answers ``{"dag_id", "run_id", "plan_hash"}``.

    Into an automation: the stored plan travels in the conf. Into a compiled plan's DAG: the DAG
    *is* its plan, so it must run the requested hash now. Either way a replay of a run keeps that
    run's data interval and params, so its ``run.*`` and ``params.*`` references resolve as they did.
    """
    target = body.target_dag_id or (body.source or {}).get("dag_id")
    if target:  # who may trigger is known before anything is read
        access.require(manager, user, "POST", target)
    if body.source is None and body.plan is None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "give a source run or a plan")
    data = _source_run(session, manager, user, body.source) if body.source is not None else None
    if not target:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "target_dag_id is required when no source run is given")
    dag = _latest_dag(session, target)
    prefixes = automation_prefixes(RunData(dag_id=target, run_id="", dag_tasks={t: DagTask() for t in dag.task_dict}))
    if prefixes:
        goal_param = goal_param_of(getattr(dag.task_dict.get(f"{prefixes[0]}attempt_1.plan"), "doc_md", None))
        return _into_automation(session, user, body, data, target, prefixes, triggered_from_ui, goal_param)
    return _into_compiled(session, user, body, data, dag, triggered_from_ui)


def _into_automation(
    session: Any,
    user: Any,
    body: Any,
    data: RunData | None,
    target: str,
    prefixes: list[str],
    from_ui: bool,
    goal_param: str | None,
) -> dict[str, Any]:
    if data is not None:
        plan = plan_with_hash(data, body.plan_hash)
        if plan is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"Run '{data.run_id}' has no plan with hash {body.plan_hash}"
            )
    else:
        plan = _checked_plan(body)
    source_prefix = automation_prefix(data) if data is not None else None
    same_dag = data is not None and target == data.dag_id
    automation_id = automation_id_of(target, source_prefix) if same_dag and source_prefix in prefixes else None
    request = ReplayRequest(
        plan=plan,
        plan_hash=body.plan_hash,
        automation_id=automation_id,
        source=dict(body.source) if body.source else None,
        requested_by=user.get_name(),
    )
    conf = {**request.run_conf(goal_param or "goal"), **_params_of(data)}
    run_id = _trigger(session, target, conf, user, from_ui, data_interval=data.data_interval if data else None)
    return {"dag_id": target, "run_id": run_id, "plan_hash": body.plan_hash}


def _params_of(data: RunData | None) -> dict[str, Any]:
    """The source run's conf (its params), without the replay request it may carry itself."""
    return {k: v for k, v in (data.conf if data is not None else {}).items() if k != REPLAY_CONF_KEY}


def _into_compiled(session: Any, user: Any, body: Any, data: RunData | None, dag: Any, from_ui: bool) -> dict[str, Any]:
    current = doc_field(dag.doc_md, "plan hash")
    if not current:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"DAG '{dag.dag_id}' holds no automation and no plan")
    if data is not None:
        if automation_prefix(data) is not None:
            ran = plan_with_hash(data, body.plan_hash) is not None
        else:
            ran = compiled_plan_ref(data)[1] == body.plan_hash
        if not ran:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"Run '{data.run_id}' has no plan with hash {body.plan_hash}"
            )
    else:
        _checked_plan(body)
    if current != body.plan_hash:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"DAG '{dag.dag_id}' runs plan {current} now, not {body.plan_hash}: its plan file changed. "
            "Write the stored plan to a plans folder (`airflow-claude replay ... --plans-dir DIR`) "
            "or replay it into an automation",
        )
    request = ReplayRequest(
        plan_hash=body.plan_hash, source=dict(body.source) if body.source else None, requested_by=user.get_name()
    )
    conf = {**_params_of(data), **request.conf()}
    run_id = _trigger(session, dag.dag_id, conf, user, from_ui, data_interval=data.data_interval if data else None)
    return {"dag_id": dag.dag_id, "run_id": run_id, "plan_hash": body.plan_hash}


def _trigger(
    session: Any,
    dag_id: str,
    conf: dict[str, Any],
    user: Any,
    triggered_from_ui: bool,
    data_interval: tuple[str, str] | None = None,
) -> str:
    """Create a manual run as ``POST /api/v2/dags/{dag_id}/dagRuns`` does (Airflow 3.3's trigger_dag_run).

    With ``data_interval``, the run has that interval and the trigger's time as its logical date
    (Airflow keeps one run per logical date, so the source run's own cannot be reused).
    """
    from airflow.api_fastapi.core_api.datamodels.dag_run import TriggerDAGRunPostBody
    from airflow.models.dag import DagModel
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    from airflow_claude.ui.store import dag_bag

    dm = session.scalar(select(DagModel).where(~DagModel.is_stale, DagModel.dag_id == dag_id).limit(1))
    if dm is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"DAG '{dag_id}' not found")
    if dm.has_import_errors:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"DAG '{dag_id}' has import errors and cannot be triggered")
    if dm.allowed_run_types is not None and DagRunType.MANUAL not in dm.allowed_run_types:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"DAG '{dag_id}' does not allow manual runs")
    dag = dag_bag().get_latest_version_of_dag(dag_id, session=session)
    now = datetime.now(UTC)
    run_id = f"replay__{now.isoformat()}"
    if data_interval is None:
        body = TriggerDAGRunPostBody(dag_run_id=run_id, logical_date=None, conf=conf)
    else:
        start, end = (datetime.fromisoformat(t) for t in data_interval)
        body = TriggerDAGRunPostBody(
            dag_run_id=run_id, logical_date=now, data_interval_start=start, data_interval_end=end, conf=conf
        )
    try:
        params = body.validate_context(dag)
        dag.create_dagrun(
            run_id=params["run_id"],
            logical_date=params["logical_date"],
            data_interval=params["data_interval"],
            run_after=params["run_after"],
            conf=params["conf"],
            run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.UI if triggered_from_ui else DagRunTriggeredByType.REST_API,
            triggering_user_name=user.get_name(),
            state=DagRunState.QUEUED,
            partition_key=params["partition_key"],
            partition_date=params["partition_date"],
            session=session,
        )
    except ValueError as exc:  # ParamValidationError is a ValueError: the DAG's params refused the conf
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
    return run_id
