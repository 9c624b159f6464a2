"""The ``plan`` task of a round: the run's goal in round 1, a re-plan with the review's reason after."""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_claude.automation.contracts import (
    COMMITTED_KEY,
    GOAL_KEY,
    OUTCOME_KEY,
    CommittedPlan,
    Outcome,
    Proposal,
    RoundReview,
    push,
)
from airflow_claude.automation.memory import memory_prompt, read_memory
from airflow_claude.automation.replay import REFUSED, check_replay, replay_request
from airflow_claude.automation.task import AutomationTask
from airflow_claude.observability import lineage
from airflow_claude.observability.redaction import redact_value
from airflow_claude.plan.model import Plan
from airflow_claude.plan.run_fields import run_values_from_context
from airflow_claude.planner.cache import PlanCache
from airflow_claude.planner.errors import BudgetExhausted, PlanningError
from airflow_claude.planner.planner import ClaudePlanner
from airflow_claude.runtime.replay import ReplayRefused


def run_goal(task: AutomationTask, context: Any) -> str:
    """The goal of this run: fixed by the DAG author, from an upstream task's XCom, or from a param."""
    automation = task.automation
    if automation.goal:
        return automation.goal
    source = automation.goal_source
    if source.task_id:
        value = context["ti"].xcom_pull(task_ids=source.task_id, key=source.key)
        where = f"XCom {source.key!r} of task {source.task_id!r}"
    else:
        value = context["params"].get(source.param)
        where = f"the {source.param!r} field of the trigger form"
    goal = value.strip() if isinstance(value, str) else ""
    if not goal:
        raise AirflowFailException(f"no goal: {where} is {type(value).__name__} {str(value)[:80]!r}, not a text")
    return goal


class PlanRoundOperator(lineage.LineageMixin, AutomationTask):
    """Ask Claude for a plan (one forced tool call plus bounded repairs), within the run's budget."""

    ui_color = "#f3e1d2"

    def execute(self, context: Any) -> dict[str, Any]:
        automation, ti, params = self.automation, context["ti"], context["params"]
        if self.round_number == 1:
            replayed = self._replay(context)
            if replayed is not None:
                return replayed
        goal = run_goal(self, context)
        parent: Plan | None = None
        memory = None
        cache = None
        plan_id = automation.plan_id(ti.run_id, self.round_number)
        if self.round_number == 1:
            entries = read_memory(automation.id)
            if automation.settings.plan_cache and (not entries or entries[-1].get("verdict") == "done"):
                # an unchanged goal after a good run reuses the cached plan: zero planning calls
                cache = PlanCache(automation.settings.plan_cache)
                plan_id = automation.stable_plan_id(goal)
            else:
                memory = memory_prompt(entries, automation.settings.memory_max_chars)
        else:
            review = self.pull(context, RoundReview, "review", round_number=self.round_number - 1)
            if review is None or review.verdict != "replan":
                raise AirflowSkipException("no re-plan was asked for")
            previous = self.pull(
                context, CommittedPlan, "commit", key=COMMITTED_KEY, round_number=self.round_number - 1
            )
            assert previous is not None  # a reviewed round with a re-plan verdict ran its plan
            parent = Plan.model_validate(previous.plan)
            memory = replan_context(previous.plan, review)
        budget = automation.budget(context, automation.model or "")
        gateway = automation.gateway(self.log, before_call=budget.guard)  # reading the connection masks its key
        budget.model = gateway.model
        ti.xcom_push(key=GOAL_KEY, value=redact_value(goal))
        max_steps = params.get("max_steps") or automation.settings.max_steps
        planner = ClaudePlanner(
            gateway,
            automation.catalog,
            limits=automation.settings.limits(int(max_steps)),
            max_tokens=automation.settings.plan_max_tokens,
            logger=self.log,
            cache=cache,
        )
        try:
            result = planner.plan(
                goal, plan_id=plan_id, memory=memory, parent=parent, run=run_values_from_context(context)
            )
        except PlanningError as exc:
            budget.record(exc.calls)
            usage = budget.push(error=f"{type(exc).__name__}: {exc}")
            self._stash_lineage(ti, gateway.model, usage, plan_id)
            if isinstance(exc, BudgetExhausted):
                push(ti, OUTCOME_KEY, Outcome(verdict="budget_exhausted", reason=str(exc)))
            raise
        budget.record(result.calls)
        usage = budget.push()
        plan = result.plan
        self._stash_lineage(ti, gateway.model, usage, plan.id, plan.hash)
        return Proposal(
            plan=plan.model_dump(mode="json"),
            plan_hash=plan.hash,
            goal=plan.goal,  # masked by the planner
            model=gateway.model,
            cached=result.cached,
        ).dump()

    def _replay(self, context: Any) -> dict[str, Any] | None:
        """A replay run's proposal: the stored plan, checked and unchanged, with no model call.

        None when the run asks for no replay of this automation. A refused replay fails the task
        for good, its reason in XCom ``outcome`` (verdict ``replay_refused``).
        """
        automation, ti = self.automation, context["ti"]
        budget = automation.budget(context, automation.model or "")  # records no call: the report's cost is 0
        plan_id: Any = None
        try:
            request = replay_request(context, automation.id)
            if request is None:
                return None
            if not automation.settings.allow_replay:
                raise ReplayRefused(
                    f"automation {automation.id} does not accept replays (AutomationSettings(allow_replay=False))"
                )
            stored = request.plan or {}
            plan_id = stored.get("id")
            goal = stored.get("goal")
            ti.xcom_push(key=GOAL_KEY, value=redact_value(goal if isinstance(goal, str) else None))
            max_steps = context["params"].get("max_steps") or automation.settings.max_steps
            plan = check_replay(request, automation, int(max_steps))
        except ReplayRefused as exc:
            usage = budget.push(error=f"{REFUSED}: {exc.reason}")
            self._stash_lineage(ti, "", usage, plan_id if isinstance(plan_id, str) else "")
            push(ti, OUTCOME_KEY, Outcome(verdict=REFUSED, reason=exc.reason))
            self.log.error("%s", exc.reason)
            raise
        usage = budget.push()
        self._stash_lineage(ti, "", usage, plan.id, plan.hash)
        self.log.info("replaying plan %s %s: no model call", plan.id, plan.hash)
        return Proposal(
            plan=plan.model_dump(mode="json"),
            plan_hash=plan.hash,
            goal=plan.goal,  # the stored plan's goal, masked when it was planned
            model="",
            replay_of=request.replay_of(),
        ).dump()

    # OpenLineage: the model and what the planning calls spent (no prompt, no completion)
    def _stash_lineage(self, ti: Any, model: str, usage: Any, plan_id: str, plan_hash: str | None = None) -> None:
        lineage.stash(self, self._model_fields(ti.try_number, model, usage, plan_id, plan_hash))

    def _model_fields(self, try_number: Any, model: Any, usage: Any, plan_id: Any, plan_hash: Any) -> dict[str, Any]:
        return lineage.model_fields(
            "plan",
            model=model,
            usage=usage,
            try_number=try_number,
            plan_id=plan_id,
            plan_hash=plan_hash,
            automation_id=self.automation_id,
            round_number=self.round_number,
            catalog_fingerprint=self.automation.catalog.fingerprint,
        )

    def lineage_fields(self, task_instance: Any) -> dict[str, Any] | None:
        try_number = getattr(task_instance, "try_number", None)
        return self._model_fields(try_number, self.automation.model, None, None, None)


def replan_context(plan: dict[str, Any], review: RoundReview) -> str:
    steps = [{k: s.get(k) for k in ("id", "status", "error") if s.get(k) is not None} for s in review.steps]
    return (
        f"The previous plan {plan['id']} did not meet the goal. Reviewer's reason: {review.reason}\n"
        f"Step results: {json.dumps(steps, sort_keys=True)[:3000]}\n"
        "Write a new plan that avoids these failures."
    )
