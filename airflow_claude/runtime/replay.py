"""Replay requests, for both runtimes: what a replay run's conf carries, and the compiled plan's check.

The UI or ``airflow-claude replay`` triggers a DAG with ``ReplayRequest(...).conf()`` under
:data:`REPLAY_CONF_KEY`. An automation proposes the request's plan unchanged
(:mod:`airflow_claude.automation.replay`); a compiled plan's DAG *is* its plan, so each of its
steps only checks that the DAG still runs the plan the request names (:func:`check_compiled_replay`):
a plan file changed between the request and the run is refused, never run in its place.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException
from pydantic import BaseModel, ConfigDict, ValidationError

from airflow_claude.errors import AirflowClaudeError
from airflow_claude.runtime.provenance import StepIdentity

REPLAY_CONF_KEY = "airflow_claude_replay"
HASH_MISMATCH = "plan_hash_mismatch"  # issue code: the plan is not the one the request names
MALFORMED = "replay_request_malformed"  # issue code: the conf entry is not a ReplayRequest


class ReplayRequest(BaseModel):
    """What a replay run's conf carries under :data:`REPLAY_CONF_KEY`.

    ``plan``: the stored plan (an automation proposes it); None for a compiled plan's DAG, which
    holds its plan. ``automation_id`` None: any automation of the DAG replays it. ``source``: the
    ``{"dag_id", "run_id"}`` of the run replayed.
    """

    model_config = ConfigDict(extra="forbid")

    plan_hash: str
    plan: dict[str, Any] | None = None
    automation_id: str | None = None
    source: dict[str, str] | None = None
    requested_by: str | None = None

    def conf(self) -> dict[str, Any]:
        """The DAG run conf entry that asks for this replay."""
        return {REPLAY_CONF_KEY: self.model_dump(mode="json")}

    def run_conf(self, goal_param: str = "goal") -> dict[str, Any]:
        """What to trigger an automation with: :meth:`conf` plus the plan's goal as its goal param.

        Airflow validates a triggered run's conf against the DAG's params, and an automation's
        trigger form requires a non-empty goal; the replay itself never reads it.
        """
        goal = (self.plan or {}).get("goal")
        return {**self.conf(), **({goal_param: goal} if isinstance(goal, str) and goal else {})}

    def replay_of(self) -> dict[str, Any]:
        """What the proposal and the report record about the replay (no plan body)."""
        return {"plan_hash": self.plan_hash, "source": self.source, "requested_by": self.requested_by}


class ReplayRefused(AirflowFailException, AirflowClaudeError):
    """The replay cannot run: ``reason`` lists every problem, one per line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def run_conf_of(context: Any) -> dict[str, Any]:
    """The DAG run's conf (``{}`` when it has none)."""
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) if dag_run is not None else None
    if conf is None and isinstance(dag_run, dict):
        conf = dag_run.get("conf")
    return conf if isinstance(conf, dict) else {}


def parse_request(raw: Any) -> ReplayRequest:
    """``raw`` (the conf entry) as a request; :class:`ReplayRefused` naming the conf key and each bad field."""
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


def check_compiled_replay(context: Any, identity: StepIdentity) -> ReplayRequest | None:
    """The replay this compiled-plan run asks for, if its DAG still runs that plan; None when none.

    A plan file changed since the request (another hash) or a malformed request fails the step for
    good (:class:`ReplayRefused`, no retry): the run never runs a plan other than the one asked for.
    """
    raw = run_conf_of(context).get(REPLAY_CONF_KEY)
    if raw is None:
        return None
    request = parse_request(raw)
    if request.plan_hash != identity.plan_hash:
        raise ReplayRefused(
            f"replay of plan {identity.plan_id} {request.plan_hash} refused [{HASH_MISMATCH}]: this DAG now runs "
            f"{identity.plan_hash} (its plan file changed since the replay was asked for). Replay the stored plan "
            "into a plans folder with `airflow-claude replay --plans-dir`, or into an automation"
        )
    return request
