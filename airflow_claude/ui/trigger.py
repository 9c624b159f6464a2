"""``POST /api/replay``: start a new run of a stored plan (by hash) in an automation DAG, with no model call.

The plan comes from the source run (the round whose plan has that hash) or from the request,
whose hash must match. The target must hold an automation (its DAG has an ``attempt_<n>.plan``
task). The run is created as Airflow's own trigger endpoint creates one (same body model, same
``create_dagrun`` call), with conf ``ReplayRequest(...).run_conf()``: the worker side
(:mod:`airflow_claude.automation.replay`) re-validates the plan against the current catalog.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, status
from pydantic import ValidationError
from sqlalchemy import select

from airflow_claude.automation.contracts import COMMITTED_KEY, RETURN_KEY
from airflow_claude.automation.replay import ReplayRequest
from airflow_claude.plan.model import Plan
from airflow_claude.ui import access
from airflow_claude.ui.runs import DagTask, RunData, automation_prefix, automation_prefixes


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


def _automation_dag(session: Any, dag_id: str) -> list[str]:
    """The automation prefixes of ``dag_id``'s latest serialized DAG; 404 when the DAG is unknown."""
    from airflow_claude.ui.store import dag_bag

    dag = dag_bag().get_latest_version_of_dag(dag_id, session=session)
    if dag is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"DAG '{dag_id}' not found")
    return automation_prefixes(RunData(dag_id=dag_id, run_id="", dag_tasks={t: DagTask() for t in dag.task_dict}))


def start_replay(session: Any, manager: Any, user: Any, body: Any, *, triggered_from_ui: bool) -> dict[str, Any]:
    """Check, then trigger the replay run; answers ``{"dag_id", "run_id", "plan_hash"}``."""
    from airflow_claude.ui import store

    source_prefix: str | None = None
    target = body.target_dag_id or (body.source or {}).get("dag_id")
    if target:  # who may trigger is known before anything is read
        access.require(manager, user, "POST", target)
    if body.source is not None:
        dag_id, run_id = body.source.get("dag_id"), body.source.get("run_id")
        if not dag_id or not run_id:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "source needs dag_id and run_id")
        access.require(manager, user, "GET", dag_id)
        data = store.load_run(session, dag_id, run_id)
        if data is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"No run '{run_id}' of DAG '{dag_id}'")
        plan = plan_with_hash(data, body.plan_hash)
        if plan is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"Run '{run_id}' has no plan with hash {body.plan_hash}")
        source_prefix = automation_prefix(data)
    elif body.plan is not None:
        try:
            actual = Plan.model_validate(body.plan).hash
        except ValidationError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"plan is not a valid plan: {exc}") from None
        if actual != body.plan_hash:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"plan hash is {actual}, not {body.plan_hash}")
        plan = body.plan
    else:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "give a source run or a plan")
    if not target:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "target_dag_id is required when no source run is given")
    prefixes = _automation_dag(session, target)
    if not prefixes:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"DAG '{target}' holds no automation to replay into")
    same_dag = body.source is not None and target == body.source.get("dag_id")
    automation_id = automation_id_of(target, source_prefix) if same_dag and source_prefix in prefixes else None
    request = ReplayRequest(
        plan=plan,
        plan_hash=body.plan_hash,
        automation_id=automation_id,
        source=dict(body.source) if body.source else None,
        requested_by=user.get_name(),
    )
    run_id = _trigger(session, target, request.run_conf(), user, triggered_from_ui)
    return {"dag_id": target, "run_id": run_id, "plan_hash": body.plan_hash}


def _trigger(session: Any, dag_id: str, conf: dict[str, Any], user: Any, triggered_from_ui: bool) -> str:
    """Create a manual run as ``POST /api/v2/dags/{dag_id}/dagRuns`` does (Airflow 3.3's trigger_dag_run)."""
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
    run_id = f"replay__{datetime.now(UTC).isoformat()}"
    body = TriggerDAGRunPostBody(dag_run_id=run_id, logical_date=None, conf=conf)
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
