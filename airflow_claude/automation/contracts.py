"""What the tasks of an automation hand each other: every XCom key, and a model per payload.

A producer pushes ``payload.model_dump(mode="json")``; a consumer reads it back with
:func:`pull`, which validates it. Nothing else in the automation names an XCom key.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

RETURN_KEY = "return_value"
USAGE_KEY = "usage"  # model-calling tasks: what they spent, every try counted
OUTCOME_KEY = "outcome"  # plan/review: why the task failed for good (budget, ...)
GOAL_KEY = "goal"  # plan: the run's goal, masked (pushed before the model is asked)
DECISION_KEY = "decision"  # approve: the person's (or the policy's) answer
COMMITTED_KEY = "committed"  # commit: the plan that runs; its return value is the default route's tickets
ROUTES_KEY = "routes"  # commit and saga.to_undo: the tickets of each other route, by route name
STEP_RECORD_KEY = "step_record"  # one per step instance: status, attempts, output preview
UNDO_RECORD_KEY = "undo_record"  # one per undone step
REPORT_KEY = "report"  # the run report, kept when the run fails

M = TypeVar("M", bound=BaseModel)

#: Where a step (or undo) runs: the mapped task's full id and the instance's map index.
Location = tuple[str, int]


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Proposal(Payload):
    """``plan``: the plan Claude proposed for this round (validated), before anyone approved it.

    ``goal`` is masked, like the plan's own: secrets never reach XCom.
    """

    plan: dict[str, Any]
    plan_hash: str
    goal: str
    model: str  # empty in a replay run: no model was asked
    cached: bool = False
    #: a replay run's record (``ReplayRequest.replay_of()``): plan_hash, source, requested_by
    replay_of: dict[str, Any] | None = None


class Outcome(Payload):
    verdict: str
    reason: str


class Decision(Payload):
    """``approve``: the chosen option, the edited plan text if any, who answered."""

    chosen_options: list[str] = Field(default_factory=list)
    params_input: dict[str, Any] = Field(default_factory=dict)
    responded_by_user: Any = None
    auto: bool = False
    timed_out: bool = False

    @property
    def edited_text(self) -> str | None:
        text = self.params_input.get("plan_json")
        return text if isinstance(text, str) and text.strip() else None

    @property
    def who(self) -> str | None:
        user = self.responded_by_user
        return user.get("name") if isinstance(user, dict) else user


class StepTicket(Payload):
    """What one mapped step instance gets: its step, where it runs, and the instances it waits for."""

    step: dict[str, Any]
    task: str  # the route's mapped task (``attempt_<n>.steps`` or ``attempt_<n>.steps_<route>``)
    index: int
    after: list[Location] = Field(default_factory=list)


class CommittedPlan(Payload):
    """``commit``: the plan that runs in this round, and where each step's instance is."""

    plan: dict[str, Any]
    plan_hash: str
    locations: dict[str, Location]  # step id -> (its route's steps task, map index)
    edited: bool = False
    approved_by: Any = None
    auto_approved: bool = False


class StepRecord(Payload):
    step_id: str
    tool: str
    attempts: int = 0
    status: Literal["success", "failed", "not_run"]
    error: str | None = None
    run_values: dict[str, Any] = Field(default_factory=dict)
    duration_s: float | None = None
    output: Any = None


class RoundReview(Payload):
    """``review``: the round's verdict and each step's summary."""

    verdict: str
    reason: str | None = None
    summary: str = ""
    reviewed: bool = True
    plan_id: str
    plan_hash: str
    steps: list[dict[str, Any]] = Field(default_factory=list)


class UndoTicket(Payload):
    """What one mapped undo instance gets: the step to undo, from which round, what to wait for."""

    step: dict[str, Any]
    round: int
    task: str  # the compensating tool's route's undo task (``saga.undo`` or ``saga.undo_<route>``)
    index: int
    after: list[Location] = Field(default_factory=list)


class UndoRecord(Payload):
    step_id: str
    round: int
    undo_tool: str
    status: Literal["undone"] = "undone"


class Usage(Payload):
    """What one model-calling task spent over all its tries."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: str = "0"
    per_call: list[dict[str, Any]] = Field(default_factory=list)
    try_number: int = 1
    error: str | None = None


class Report(Payload):
    """The run report: what downstream tasks of the user's DAG read."""

    dag_id: str
    run_id: str
    automation_id: str
    goal: str | None
    run: dict[str, Any]
    status: Literal["succeeded", "rejected", "escalated", "failed"]
    verdict: str | None
    reason: str | None
    rounds: list[dict[str, Any]]
    version_chain: list[str]
    model_calls: list[dict[str, Any]]
    tokens: dict[str, int]
    cost_usd: str
    budget_usd: str
    compensation: dict[str, list[str]]
    #: set when the run replayed a stored plan: plan_hash, source ({dag_id, run_id} or None), requested_by
    replay_of: dict[str, Any] | None = None


def pull(ti: Any, model: type[M], task_id: str, key: str = RETURN_KEY, map_index: int | None = None) -> M | None:
    """The payload ``task_id`` pushed under ``key``, validated; None when it pushed none."""
    kwargs: dict[str, Any] = {"task_ids": task_id, "key": key}
    if map_index is not None:
        kwargs["map_indexes"] = map_index
    value = ti.xcom_pull(**kwargs)
    if value is None:
        return None
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise RuntimeError(f"XCom {key!r} of task {task_id!r} is not a {model.__name__}: {exc}") from exc


def push(ti: Any, key: str, payload: Payload) -> dict[str, Any]:
    value = payload.dump()
    ti.xcom_push(key=key, value=value)
    return value
