"""What the plugin's JSON API answers: a run's summary (the list) and its detail (the run page).

Everything here is already masked and truncated by the read side (:mod:`airflow_claude.ui.runs`):
these models only fix the shape the page, the CLI and the tests rely on.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Kind = Literal["automation", "plan"]
LedgerState = Literal["result", "started", "none"]


class RunSummary(BaseModel):
    """One row of the list: an automation run or a compiled-plan run."""

    dag_id: str
    run_id: str
    kind: Kind
    state: str | None = None
    start_date: str | None = None
    goal: str | None = None
    verdict: str | None = None
    status: str | None = None
    cost_usd: str = "0"
    model_calls: int = 0
    approver: str | None = None
    plan_id: str | None = None
    plan_hash: str | None = None


class StepView(BaseModel):
    """One step of a round: where it ran, how it went, what its ledger holds."""

    id: str
    tool: str
    depends_on: list[str] = Field(default_factory=list)
    task_id: str | None = None
    map_index: int = -1
    state: str | None = None
    attempts: int = 0
    idempotency_key: str | None = None
    ledger: LedgerState = "none"
    output_summary: str | None = None
    queue: str | None = None


class RoundView(BaseModel):
    """One plan-act-review round (a compiled-plan run has exactly one)."""

    round: int
    plan_id: str | None = None
    plan_hash: str | None = None
    parent_plan_id: str | None = None
    edited: bool = False
    approved_by: str | None = None
    auto_approved: bool | None = None
    verdict: str | None = None
    reason: str | None = None
    steps: list[StepView] = Field(default_factory=list)


class VersionEntry(BaseModel):
    """One link of the version chain: which plan, made from which, changed by whom, and why."""

    round: int
    plan_id: str
    plan_hash: str | None = None
    parent_plan_id: str | None = None
    created_by: str | None = None
    edited: bool = False
    approved_by: str | None = None
    auto_approved: bool | None = None
    replan_reason: str | None = None  # the previous round's review, when it asked for this plan
    changed_since: str | None = None  # the plan hash ``changes`` compares with (previous round or DAG version)
    changes: list[str] = Field(default_factory=list)  # from that plan to this one (a re-plan's proposal)
    edits: list[str] = Field(default_factory=list)  # from the proposal to the plan the approver committed


class CallView(BaseModel):
    """One model call and what it cost."""

    purpose: str | None = None
    request_id: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: str = "0"


def _no_compensation() -> dict[str, list[str]]:
    return {"undone": [], "not_undone": []}


class RunDetail(RunSummary):
    """The run page: the summary plus the plan, its rounds, versions, calls, cost and compensation.

    ``plan_exact``: the plan is the stored document itself (automation XCom, or the plan file whose
    hash matched the steps' provenance); False when it was rebuilt from the DAG for display only.
    """

    plan: dict[str, Any] | None = None
    plan_exact: bool = False
    rounds: list[RoundView] = Field(default_factory=list)
    version_chain: list[VersionEntry] = Field(default_factory=list)
    calls: list[CallView] = Field(default_factory=list)
    compensation: dict[str, list[str]] = Field(default_factory=_no_compensation)
    replay_of: dict[str, Any] | None = None
    replays: list[dict[str, str]] = Field(default_factory=list)
    data_interval: list[str] | None = None  # ISO start and end: what the run's run.* references resolved to
    reason: str | None = None

    def summary(self) -> RunSummary:
        return RunSummary.model_validate(self.model_dump(include=set(RunSummary.model_fields)))
