"""Replay: a run whose conf carries a stored plan runs that exact plan again, with no model call.

The UI or ``airflow-claude replay`` triggers the automation's DAG with
``ReplayRequest(...).conf()``. Round 1's plan task then checks the plan (the plan model, its
hash against the requested one, the validator against the automation's *current* catalog and
limits) and proposes it unchanged: same id, same hash. The approval policy applies as usual;
the review judges from the step results alone.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException
from pydantic import BaseModel, ConfigDict, ValidationError

from airflow_claude.automation.automation import Automation
from airflow_claude.errors import AirflowClaudeError, PlanIssue
from airflow_claude.plan.model import Plan
from airflow_claude.plan.validator import validate_plan

REPLAY_CONF_KEY = "airflow_claude_replay"
REFUSED = "replay_refused"  # the Outcome verdict of a refused replay
HASH_MISMATCH = "plan_hash_mismatch"  # issue code: the plan is not the one the request names
MALFORMED = "replay_request_malformed"  # issue code: the conf entry is not a ReplayRequest


class ReplayRequest(BaseModel):
    """What a replay run's conf carries under :data:`REPLAY_CONF_KEY`.

    ``automation_id`` None: any automation of the DAG replays it. ``source``: the
    ``{"dag_id", "run_id"}`` of the run replayed.
    """

    model_config = ConfigDict(extra="forbid")

    plan: dict[str, Any]
    plan_hash: str
    automation_id: str | None = None
    source: dict[str, str] | None = None
    requested_by: str | None = None

    def conf(self) -> dict[str, Any]:
        """The DAG run conf entry that asks for this replay."""
        return {REPLAY_CONF_KEY: self.model_dump(mode="json")}

    def run_conf(self) -> dict[str, Any]:
        """What to trigger the run with: :meth:`conf` plus the plan's goal as the ``goal`` param.

        Airflow validates a triggered run's conf against the DAG's params, and an automation's
        trigger form requires a non-empty ``goal``; the replay itself never reads it.
        """
        goal = self.plan.get("goal")
        return {**self.conf(), **({"goal": goal} if isinstance(goal, str) and goal else {})}

    def replay_of(self) -> dict[str, Any]:
        """What the proposal and the report record about the replay (no plan body)."""
        return {"plan_hash": self.plan_hash, "source": self.source, "requested_by": self.requested_by}


class ReplayRefused(AirflowFailException, AirflowClaudeError):
    """The replay cannot run: ``reason`` lists every problem, one per line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _run_conf(context: Any) -> dict[str, Any]:
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) if dag_run is not None else None
    if conf is None and isinstance(dag_run, dict):
        conf = dag_run.get("conf")
    return conf if isinstance(conf, dict) else {}


def _aimed_elsewhere(raw: Any, automation_id: str) -> bool:
    target = raw.get("automation_id") if isinstance(raw, dict) else None
    return isinstance(target, str) and target != automation_id


def replay_request(context: Any, automation_id: str) -> ReplayRequest | None:
    """The replay this run asks of automation ``automation_id``; None when it asks none (or another's).

    A malformed request raises :class:`ReplayRefused` naming the conf key and each bad field.
    """
    raw = _run_conf(context).get(REPLAY_CONF_KEY)
    if raw is None or _aimed_elsewhere(raw, automation_id):
        return None
    try:
        return ReplayRequest.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{REPLAY_CONF_KEY}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" if err["loc"] else err["msg"]
            for err in exc.errors()
        ]
        raise ReplayRefused(
            f"the run conf key {REPLAY_CONF_KEY!r} is not a replay request [{MALFORMED}]:\n"
            + "\n".join(f"  - {p}" for p in problems)
        ) from None


def replay_of_run(context: Any, automation_id: str) -> dict[str, Any] | None:
    """The replay record of this run for the report; None when none (a malformed request is not one)."""
    try:
        request = replay_request(context, automation_id)
    except ReplayRefused:
        return None
    return request.replay_of() if request is not None else None


def check_replay(request: ReplayRequest, automation: Automation, max_steps: int | None = None) -> Plan:
    """The requested plan, unchanged, if it still fits; else :class:`ReplayRefused` listing every problem.

    Checks, all collected: the plan model, its hash against ``request.plan_hash``, and the
    validator against the automation's current catalog and limits.
    """
    plan: Plan | None
    issues: list[PlanIssue] = []
    try:
        plan = Plan.model_validate(request.plan)
    except ValidationError:
        plan = None  # the validator below names each problem with its code and path
    plan_id = request.plan.get("id") if isinstance(request.plan.get("id"), str) else None
    if plan is not None and plan.hash != request.plan_hash:
        issues.append(
            PlanIssue(
                HASH_MISMATCH,
                f"the plan hashes to {plan.hash}, not to the requested {request.plan_hash}: it is not the stored plan",
                None,
                plan_id,
                None,
                "$",
            )
        )
    result = validate_plan(request.plan, automation.catalog, limits=automation.settings.limits(max_steps))
    issues.extend(result.issues)
    if plan is None and not result.issues:  # the validator missed what the model refused
        issues.append(PlanIssue("invalid_plan", "the plan does not fit the plan model", None, plan_id, None, "$"))
    if issues or plan is None:
        count = f"{len(issues)} problem{'s' if len(issues) != 1 else ''}"
        raise ReplayRefused(
            f"replay of plan {plan_id or '?'} {request.plan_hash} refused: {count}:\n"
            + "\n".join(f"  - {issue}" for issue in issues)
        )
    return plan
