"""The operators of an automation DAG: plan, approve, commit, step, review, report.

Each round ``attempt_<n>`` is: ``plan`` -> ``approve`` -> ``commit`` -> for each level k,
``level_<k>_steps`` (the steps of level k) -> ``level_<k>`` (one mapped task instance per
step, labelled with the step id) -> ``review``. Round n+1 runs only when round n's review asks
for a re-plan. ``report`` ends every run. Plan content and model output are data throughout:
no operator here has a template field that could render them.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import BaseOperator, Param
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_claude.automation.budget import RunBudget
from airflow_claude.automation.levels import plan_levels
from airflow_claude.automation.memory import memory_prompt, read_memory, remember
from airflow_claude.automation.review import (
    REVIEW_PROMPT_NAME,
    Review,
    parse_review,
    review_request,
    step_summaries,
)
from airflow_claude.automation.settings import AutomationSettings
from airflow_claude.catalog.catalog import Catalog
from airflow_claude.errors import StepError
from airflow_claude.factory.docs import fenced
from airflow_claude.fingerprint import canonical_json
from airflow_claude.observability.records import emit
from airflow_claude.observability.redaction import redact_value
from airflow_claude.plan.model import Plan
from airflow_claude.plan.params import param_values
from airflow_claude.plan.run_fields import run_values_from_context
from airflow_claude.plan.validator import validate_plan
from airflow_claude.planner.cache import PlanCache
from airflow_claude.planner.calls import CallPolicy, count_input_tokens, create_message
from airflow_claude.planner.errors import BudgetExhausted, PlanningError
from airflow_claude.planner.planner import ClaudePlanner
from airflow_claude.planner.pricing import PriceTable
from airflow_claude.runtime.compensate import compensation_args
from airflow_claude.runtime.execute import run_step
from airflow_claude.runtime.provenance import StepIdentity
from airflow_claude.runtime.resolve import RunScope, resolve_with, run_refs_used

STEP_RECORD_KEY = "step_record"
OUTCOME_KEY = "outcome"
REPORT_KEY = "report"
DECISION_KEY = "decision"
UNDO_RECORD_KEY = "undo_record"


@dataclass(frozen=True)
class Automation:
    """Everything the tasks of one automation DAG share (built once per DAG file parse)."""

    dag_id: str
    catalog: Catalog
    settings: AutomationSettings
    goal: str | None
    conn_id: str
    model: str | None
    prices: PriceTable = field(default_factory=PriceTable)
    call_policy: CallPolicy = field(default_factory=CallPolicy)

    @property
    def rounds(self) -> int:
        return self.settings.max_replans + 1

    def group(self, round_number: int) -> str:
        return f"attempt_{round_number}"

    def model_tasks(self) -> list[str]:
        return [f"{self.group(r)}.{name}" for r in range(1, self.rounds + 1) for name in ("plan", "review")]

    def client_and_model(self) -> tuple[Any, str]:
        from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

        hook = AnthropicHook(conn_id=self.conn_id)
        return hook.get_conn(), self.model or hook.default_model

    def budget(self, context: Any, model: str) -> RunBudget:
        limit = Decimal(str(context["params"].get("budget_usd") or self.settings.budget_usd))
        return RunBudget(min(limit, Decimal(self.settings.budget_usd)), context, self.model_tasks(), self.prices, model)

    def stable_plan_id(self, goal: str) -> str:
        """The same for every run with this goal, so the plan cache can answer."""
        base = re.sub(r"[^A-Za-z0-9_-]", "_", self.dag_id)[:40]
        return f"{base}_{hashlib.sha256(goal.encode()).hexdigest()[:8]}"

    def plan_id(self, run_id: str, round_number: int) -> str:
        base = re.sub(r"[^A-Za-z0-9_-]", "_", self.dag_id)[:40]
        return f"{base}_{hashlib.sha256(run_id.encode()).hexdigest()[:8]}_v{round_number}"


_AUTOMATIONS: dict[str, Automation] = {}


def register_automation(automation: Automation) -> None:
    """Make ``automation`` findable by its DAG id in this process (the DAG file's parse registers it)."""
    _AUTOMATIONS[automation.dag_id] = automation


def automation_named(dag_id: str) -> Automation:
    """The automation a task belongs to: tasks keep only its id, so their serialized form is plain data."""
    try:
        return _AUTOMATIONS[dag_id]
    except KeyError:
        raise RuntimeError(
            f"automation {dag_id!r} is not defined in this process: its DAG file must call claude_automation()"
        ) from None


class _AutomationTask(BaseOperator):
    template_fields: Sequence[str] = ()  # nothing here is ever rendered

    def __init__(self, *, automation_id: str, round_number: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.automation_id = automation_id
        self.round_number = round_number

    @property
    def automation(self) -> Automation:
        return automation_named(self.automation_id)

    def pull(self, context: Any, name: str, key: str = "return_value", round_number: int | None = None) -> Any:
        group = self.automation.group(round_number or self.round_number)
        return context["ti"].xcom_pull(task_ids=f"{group}.{name}", key=key)


class PlanRoundOperator(_AutomationTask):
    """Ask Claude for a plan: the run's goal in round 1, a re-plan with the review's reason after."""

    ui_color = "#f3e1d2"

    def execute(self, context: Any) -> dict[str, Any]:
        automation, ti, params = self.automation, context["ti"], context["params"]
        goal = automation.goal or str(params.get("goal") or "").strip()
        if not goal:
            raise AirflowFailException("no goal: type one in the trigger form (the 'goal' field)")
        parent: Plan | None = None
        memory = None
        cache = None
        plan_id = automation.plan_id(ti.run_id, self.round_number)
        if self.round_number == 1:
            entries = read_memory(automation.dag_id)
            if automation.settings.plan_cache and (not entries or entries[-1].get("verdict") == "done"):
                # an unchanged goal after a good run reuses the cached plan: zero planning calls
                cache = PlanCache(automation.settings.plan_cache)
                plan_id = automation.stable_plan_id(goal)
            else:
                memory = memory_prompt(entries, automation.settings.memory_max_chars)
        else:
            review = self.pull(context, "review", round_number=self.round_number - 1)
            if not isinstance(review, dict) or review.get("verdict") != "replan":
                raise AirflowSkipException("no re-plan was asked for")
            previous = self.pull(context, "commit", round_number=self.round_number - 1)
            parent = Plan.model_validate(previous["plan"])
            memory = replan_context(previous["plan"], review)
        client, model = automation.client_and_model()
        budget = automation.budget(context, model)
        max_steps = params.get("max_steps") or automation.settings.max_steps
        planner = ClaudePlanner(
            client,
            automation.catalog,
            model=model,
            limits=automation.settings.limits(int(max_steps)),
            max_tokens=automation.settings.plan_max_tokens,
            call_policy=automation.call_policy,
            prices=automation.prices,
            logger=self.log,
            before_call=budget.guard,
            cache=cache,
        )
        try:
            run = run_values_from_context(context)
            result = planner.plan(goal, plan_id=plan_id, memory=memory, parent=parent, run=run)
        except PlanningError as exc:
            budget.record(exc.calls)
            budget.push(error=f"{type(exc).__name__}: {exc}")
            if isinstance(exc, BudgetExhausted):
                ti.xcom_push(key=OUTCOME_KEY, value={"verdict": "budget_exhausted", "reason": str(exc)})
            if exc.retryable:
                raise
            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
        budget.record(result.calls)
        budget.push()
        plan = result.plan
        return {
            "plan": plan.model_dump(mode="json"),
            "plan_hash": plan.hash,
            "goal": goal,
            "model": model,
            "cached": result.cached,
        }


class PlanApprovalOperator(ApprovalOperator):
    """Approve or reject the whole plan once, in the Airflow UI, without holding a worker slot.

    The approver sees the steps, tools, arguments, dependencies and the spend so far, and may
    edit the plan JSON; an edited plan is validated again before anything runs.
    """

    template_fields: Sequence[str] = ()  # subject and body are built from data at run time

    def __init__(self, *, automation_id: str, round_number: int, **kwargs: Any) -> None:
        settings = automation_named(automation_id).settings
        kwargs.pop("params", None)  # the DAG's trigger-form params are not approval form fields
        default = "Approve" if settings.on_approval_timeout == "approve" else "Reject"
        super().__init__(
            subject="Approve the plan?",
            body="The plan is shown here when it is ready.",
            defaults=[default] if settings.approval_timeout else None,
            response_timeout=settings.approval_timeout,
            params={"plan_json": Param("", type="string", description="The plan; edit it to change it.")},
            **{"retries": 2, "retry_delay": timedelta(seconds=5), **kwargs},
        )
        self.automation_id = automation_id
        self.round_number = round_number

    @property
    def automation(self) -> Automation:
        return automation_named(self.automation_id)

    def _proposal(self, context: Any) -> dict[str, Any]:
        group = self.automation.group(self.round_number)
        return context["ti"].xcom_pull(task_ids=f"{group}.plan")

    def execute(self, context: Any) -> Any:
        proposal = self._proposal(context)
        plan = proposal["plan"]
        required = context["params"].get("require_approval", self.automation.settings.require_approval)
        if not required:
            emit(
                self.log,
                "plan.auto_approved",
                dag_id=context["ti"].dag_id,
                run_id=context["ti"].run_id,
                plan_id=plan["id"],
                plan_hash=proposal["plan_hash"],
            )
            decision: dict[str, Any] = {
                "chosen_options": [self.APPROVE],
                "params_input": {},
                "responded_by_user": None,
                "auto": True,
            }
            context["ti"].xcom_push(key=DECISION_KEY, value=decision)
            return decision
        usage = context["ti"].xcom_pull(task_ids=f"{self.automation.group(self.round_number)}.plan", key="usage")
        self.subject = f"Approve plan {plan['id']} ({len(plan['steps'])} steps)?"
        self.body = approval_markdown(plan, proposal["plan_hash"], self.automation.catalog, usage)
        self.params = ParamsDict(
            {
                "plan_json": Param(
                    json.dumps(plan, indent=2, ensure_ascii=False),
                    type="string",
                    description="The plan as JSON. Edit it to change the plan; it is validated "
                    "again before anything runs.",
                )
            }
        )
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        """Record the decision first: on Reject the base class skips downstream and returns nothing."""
        user = event.get("responded_by_user")
        decision = {
            "chosen_options": list(event.get("chosen_options") or []),
            "params_input": dict(event.get("params_input") or {}),
            "responded_by_user": dict(user) if isinstance(user, dict) else user,
            "auto": False,
            "timed_out": "error" in event,
        }
        context["ti"].xcom_push(key=DECISION_KEY, value=decision)
        return super().execute_complete(context=context, event=event)

    def validate_params_input(self, params_input: Any) -> None:
        """Only the plan field exists; its content is checked by the commit task, not here."""
        unknown = set(params_input or {}) - {"plan_json"}
        if unknown:
            raise ValueError(f"unexpected approval fields: {sorted(unknown)}")


class CommitPlanOperator(_AutomationTask):
    """Fix the plan that will run (the approved one, or the approver's validated edit) and its levels."""

    def execute(self, context: Any) -> dict[str, Any]:
        automation, ti = self.automation, context["ti"]
        proposal = self.pull(context, "plan")
        decision = self.pull(context, "approve", key=DECISION_KEY) or {}
        plan_doc = proposal["plan"]
        edited_text = (decision.get("params_input") or {}).get("plan_json")
        edited = False
        if edited_text and edited_text.strip():
            plan_doc, edited = self._edited(context, plan_doc, edited_text, decision)
        plan = Plan.model_validate(plan_doc)
        levels = plan_levels(plan)
        group = automation.group(self.round_number)
        locations = {
            step["id"]: [f"{group}.level_{k}", index]
            for k, level in enumerate(levels, start=1)
            for index, step in enumerate(level)
        }
        emit(
            self.log,
            "plan.committed",
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            plan_id=plan.id,
            plan_hash=plan.hash,
            steps=len(plan.steps),
            levels=len(levels),
            edited=edited,
        )
        return {
            "plan": plan.model_dump(mode="json"),
            "plan_hash": plan.hash,
            "levels": levels,
            "locations": locations,
            "edited": edited,
            "approved_by": decision.get("responded_by_user"),
            "auto_approved": bool(decision.get("auto")),
        }

    def _edited(self, context: Any, original: dict[str, Any], text: str, decision: dict[str, Any]) -> tuple[Any, bool]:
        data, problems = edit_problems(self.automation, context, original, text)
        if data is None:
            return original, False
        if problems:
            raise AirflowFailException("the edited plan is invalid; nothing ran:\n" + "\n".join(problems))
        user = decision.get("responded_by_user") or {}
        name = user.get("name") if isinstance(user, dict) else str(user)
        provenance = dict(data.get("provenance") or {})
        provenance.update(
            created_by=f"human:{name or 'approver'}",
            created_at=datetime.now(UTC).isoformat(),
            parent_plan_id=original["id"],
            parent_plan_hash=Plan.model_validate(original).hash,
        )
        data["provenance"] = provenance
        limits = self.automation.settings.limits(context["params"].get("max_steps"))
        plan = validate_plan(data, self.automation.catalog, limits=limits).raise_for_issues()
        return plan.model_dump(mode="json"), True


def edit_problems(automation: Automation, context: Any, original: dict[str, Any], text: str) -> tuple[Any, list[str]]:
    """``(None, [])`` for an unchanged plan; else the edited document and its validation problems.

    Both the commit task and the review call this, so the review can say why an edit was refused
    without relying on anything the failed commit task wrote.
    """
    from airflow_claude.plan.loader import parse_json_text

    data, issues = parse_json_text(text, file="approval form")
    if not issues and canonical_json(data) == canonical_json(original):
        return None, []
    if not issues:
        limits = automation.settings.limits(context["params"].get("max_steps"))
        issues = validate_plan(data, automation.catalog, limits=limits, file="approval form").issues
    return data, [str(issue) for issue in issues]


class LevelStepsOperator(_AutomationTask):
    """Hands the steps of one level to that level's mapped task (Airflow maps over return values only)."""

    ui_color = "#eeeeee"

    def __init__(self, *, level: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.level = level

    def execute(self, context: Any) -> list[dict[str, Any]]:
        levels = self.pull(context, "commit")["levels"]
        return levels[self.level - 1] if self.level <= len(levels) else []


class StepRetryPolicy(RetryPolicy):
    """Per-step retries for mapped steps: ``retries`` can only be set once for a mapped task."""

    def __init__(self, automation: Automation) -> None:
        self.automation = automation

    def evaluate(self, exception: BaseException, try_number: int, max_tries: int, context: Any = None) -> RetryDecision:
        if isinstance(exception, StepError):
            return RetryDecision.fail("the step's arguments or output break the tool's contract")
        task = context["ti"].task if context else None
        step = getattr(task, "step", None)
        if isinstance(step, dict):
            tool = self.automation.catalog.get(step.get("tool", ""))
            allowed = step.get("retries")
            allowed = allowed if allowed is not None else (tool.default_retries if tool else 0)
            if try_number > allowed:
                return RetryDecision.fail(f"step '{step.get('id')}' used its {allowed} retries")
        return RetryDecision()

    def serialize(self) -> dict[str, Any]:
        return {"policy": "airflow_claude.StepRetryPolicy"}


class _MappedStepTask(_AutomationTask):
    """A task mapped over the steps of a run-time plan: each instance gets one step (a JSON dict)."""

    def __init__(self, *, step: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.step = step


class RunPlanStepOperator(_MappedStepTask):
    """One step of a plan made at run time, as one mapped task instance labelled with its step id."""

    ui_color = "#efe6fb"

    def execute(self, context: Any) -> Any:
        context["step_id"] = self.step["id"]  # the Grid label (map_index_template)
        ti = context["ti"]
        commit = self.pull(context, "commit")
        tool = self.automation.catalog[self.step["tool"]]
        identity = StepIdentity(
            commit["plan"]["id"],
            commit["plan_hash"],
            self.step["id"],
            tool.name,
            tool.version,
            self.automation.catalog.fingerprint,
        )
        fetch = location_fetcher(ti, commit["locations"])
        started = time.monotonic()
        record: dict[str, Any] = {"step_id": self.step["id"], "tool": tool.name, "attempts": ti.try_number}
        try:
            scope = plan_scope(commit["plan"], context)
            output = run_step(
                tool, self.step.get("args", {}), identity, context, fetch_output=fetch, log=self.log, scope=scope
            )
        except BaseException as exc:
            record.update(
                status="failed",
                error=f"{type(exc).__name__}: {exc}"[:2000],
                duration_s=round(time.monotonic() - started, 3),
            )
            ti.xcom_push(key=STEP_RECORD_KEY, value=record)
            raise
        record.update(
            status="success",
            run_values=redact_value(run_refs_used(self.step.get("args", {}), scope)),
            duration_s=round(time.monotonic() - started, 3),
            output=_preview(output, self.automation.settings.review_output_chars),
        )
        ti.xcom_push(key=STEP_RECORD_KEY, value=record)
        return output


class ReviewOperator(_AutomationTask):
    """Claude's verdict on the round: done, re-plan (with the reason) or escalate."""

    ui_color = "#f3e1d2"

    def execute(self, context: Any) -> dict[str, Any]:
        automation, ti = self.automation, context["ti"]
        proposal = self.pull(context, "plan")
        if proposal is None:
            raise AirflowSkipException("this round did not run")
        commit = self.pull(context, "commit")
        if commit is None:
            return self._not_executed(context, proposal)
        records = {
            step_id: ti.xcom_pull(task_ids=task_id, map_indexes=index, key=STEP_RECORD_KEY)
            for step_id, (task_id, index) in commit["locations"].items()
        }
        summaries = step_summaries(commit["plan"], records, automation.settings.review_output_chars)
        if automation.settings.review == "on_failure" and all(s["status"] == "success" for s in summaries):
            return self._unreviewed(context, commit, summaries)
        client, model = automation.client_and_model()
        budget = automation.budget(context, model)
        request = review_request(
            proposal["goal"],
            commit["plan"],
            summaries,
            model=model,
            max_tokens=automation.settings.review_max_tokens,
            run=run_values_from_context(context),
        )
        try:
            budget.guard("review", count_input_tokens(client, request, automation.call_policy), request["max_tokens"])
            started = time.monotonic()
            message = create_message(client, request, automation.call_policy)
        except PlanningError as exc:
            budget.push(error=f"{type(exc).__name__}: {exc}")
            if isinstance(exc, BudgetExhausted):
                ti.xcom_push(key=OUTCOME_KEY, value={"verdict": "budget_exhausted", "reason": str(exc)})
            if exc.retryable:
                raise
            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
        usage = automation.prices.call_usage("review", model, getattr(message, "_request_id", None), message.usage)
        budget.record([usage])
        budget.push()
        emit(
            self.log,
            "model.call",
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            plan_id=commit["plan"]["id"],
            duration_s=round(time.monotonic() - started, 3),
            stop_reason=message.stop_reason,
            prompt_template=REVIEW_PROMPT_NAME,
            **usage.to_dict(),
        )
        return self._verdict(context, commit, parse_review(message), summaries)

    def _unreviewed(self, context: Any, commit: dict[str, Any], summaries: list[dict[str, Any]]) -> dict[str, Any]:
        """``review="on_failure"``: every step succeeded, so the round is done without a model call."""
        reason = "every step succeeded; not reviewed by Claude (review='on_failure')"
        return self._verdict(context, commit, Review(verdict="done", reason=reason), summaries, reviewed=False)

    def _verdict(
        self,
        context: Any,
        commit: dict[str, Any],
        review: Review,
        summaries: list[dict[str, Any]],
        reviewed: bool = True,
    ) -> dict[str, Any]:
        ti = context["ti"]
        emit(
            self.log,
            "review.verdict",
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            plan_id=commit["plan"]["id"],
            verdict=review.verdict,
            reason=review.reason,
            reviewed=reviewed,
        )
        return {
            **review.model_dump(),
            "reviewed": reviewed,
            "plan_id": commit["plan"]["id"],
            "plan_hash": commit["plan_hash"],
            "steps": summaries,
        }

    def _not_executed(self, context: Any, proposal: dict[str, Any]) -> dict[str, Any]:
        decision = self.pull(context, "approve", key=DECISION_KEY)
        if isinstance(decision, dict) and decision.get("chosen_options") == [PlanApprovalOperator.REJECT]:
            user = decision.get("responded_by_user") or {}
            who = user.get("name") if isinstance(user, dict) else user
            return {
                "verdict": "rejected",
                "reason": f"rejected by {who or 'the approver'}",
                "plan_id": proposal["plan"]["id"],
                "plan_hash": proposal["plan_hash"],
                "steps": [],
            }
        edited = ((decision or {}).get("params_input") or {}).get("plan_json") if isinstance(decision, dict) else None
        if edited and edited.strip():
            _, problems = edit_problems(self.automation, context, proposal["plan"], edited)
            if problems:
                return {
                    "verdict": "invalid_edit",
                    "reason": "; ".join(problems),
                    "plan_id": proposal["plan"]["id"],
                    "plan_hash": proposal["plan_hash"],
                    "steps": [],
                }
        return {
            "verdict": "not_executed",
            "reason": "the plan did not reach execution",
            "plan_id": proposal["plan"]["id"],
            "plan_hash": proposal["plan_hash"],
            "steps": [],
        }


def plan_scope(plan: dict[str, Any], context: Any) -> RunScope:
    """``run`` and ``params`` of a run-time plan: its declared params over the run's conf, checked here."""
    return RunScope.of(context, param_values(plan.get("params") or {}, context["params"]))


def location_fetcher(ti: Any, locations: dict[str, list[Any]]) -> Any:
    """Outputs of run-time steps: the mapped instance that ran each step, if it succeeded."""

    def fetch(step_id: str) -> Any:
        task_id, index = locations[step_id]
        record = ti.xcom_pull(task_ids=task_id, map_indexes=index, key=STEP_RECORD_KEY)
        if not isinstance(record, dict) or record.get("status") != "success":
            raise StepError(f"step '{step_id}' has no output; it must succeed before its output is used")
        return ti.xcom_pull(task_ids=task_id, map_indexes=index, key="return_value")

    return fetch


def final_verdict(task: _AutomationTask, context: Any) -> str | None:
    """The verdict of the last round that was reviewed (None when no round got that far)."""
    for r in range(task.automation.rounds, 0, -1):
        review = task.pull(context, "review", round_number=r)
        if isinstance(review, dict):
            return str(review.get("verdict"))
    return None


def run_is_failing(task: _AutomationTask, context: Any) -> bool:
    verdict = final_verdict(task, context)
    if verdict in ("done", "rejected"):
        return False
    return not (verdict == "escalate" and task.automation.settings.on_escalate == "notify")


class UndoStepsOperator(LevelStepsOperator):
    """Hands one level's finished compensable steps to its undo task, when the run is failing."""

    def execute(self, context: Any) -> list[dict[str, Any]]:
        commit = self.pull(context, "commit")
        if not isinstance(commit, dict) or self.level > len(commit["levels"]) or not run_is_failing(self, context):
            return []
        ti, catalog = context["ti"], self.automation.catalog
        finished = []
        for step in commit["levels"][self.level - 1]:
            tool = catalog.get(step["tool"])
            if tool is None or tool.compensation is None:
                continue
            task_id, index = commit["locations"][step["id"]]
            record = ti.xcom_pull(task_ids=task_id, map_indexes=index, key=STEP_RECORD_KEY)
            if isinstance(record, dict) and record.get("status") == "success":
                finished.append(step)
        return finished


class UndoPlanStepOperator(_MappedStepTask):
    """Undo one finished mutating step of a failing run with its compensating tool (one mapped instance)."""

    ui_color = "#fde2c4"

    def execute(self, context: Any) -> Any:
        context["step_id"] = f"undo {self.step['id']}"
        ti, catalog = context["ti"], self.automation.catalog
        commit = self.pull(context, "commit")
        tool = catalog[self.step["tool"]]
        assert tool.compensation is not None
        undo_tool = catalog[tool.compensation.tool]
        fetch = location_fetcher(ti, commit["locations"])
        args = resolve_with(self.step.get("args", {}), fetch, plan_scope(commit["plan"], context))
        derived = compensation_args(tool.compensation, self.step["id"], args, fetch(self.step["id"]))
        identity = StepIdentity(
            commit["plan"]["id"],
            commit["plan_hash"],
            f"undo_{self.step['id']}",
            undo_tool.name,
            undo_tool.version,
            catalog.fingerprint,
        )
        result = run_step(undo_tool, derived, identity, context, fetch_output=fetch, log=self.log)
        emit(
            self.log,
            "step.compensated",
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            plan_id=commit["plan"]["id"],
            step_id=self.step["id"],
            tool=undo_tool.name,
        )
        ti.xcom_push(
            key=UNDO_RECORD_KEY,
            value={"step_id": self.step["id"], "round": self.round_number, "with": undo_tool.name, "status": "undone"},
        )
        return result


class ReportOperator(_AutomationTask):
    """The run report (XCom and task log): plans and versions, steps, verdict, tokens and cost."""

    ui_color = "#d8f0d8"

    def execute(self, context: Any) -> dict[str, Any]:
        automation, ti = self.automation, context["ti"]
        rounds: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        for r in range(1, automation.rounds + 1):
            usage = [self.pull(context, name, key="usage", round_number=r) for name in ("plan", "review")]
            for item in usage:
                if isinstance(item, dict):
                    calls.extend(item.get("per_call", []))
            proposal = self.pull(context, "plan", round_number=r)
            outcome = self.pull(context, "plan", key=OUTCOME_KEY, round_number=r)
            if proposal is None:
                if isinstance(outcome, dict) or isinstance(usage[0], dict):
                    rounds.append(
                        {
                            "round": r,
                            "verdict": (outcome or {}).get("verdict", "planning_failed"),
                            "reason": (outcome or {}).get("reason") or (usage[0] or {}).get("error"),
                        }
                    )
                continue
            commit = self.pull(context, "commit", round_number=r) or {}
            review = self.pull(context, "review", round_number=r)
            if review is None:
                review = self.pull(context, "review", key=OUTCOME_KEY, round_number=r) or {
                    "verdict": "review_failed",
                    "reason": "the review task did not finish",
                }
            plan = commit.get("plan") or proposal["plan"]
            rounds.append(
                {
                    "round": r,
                    "plan_id": plan["id"],
                    "plan_hash": commit.get("plan_hash") or proposal["plan_hash"],
                    "parent_plan_id": plan["provenance"].get("parent_plan_id"),
                    "edited": commit.get("edited", False),
                    "approved_by": commit.get("approved_by"),
                    "auto_approved": commit.get("auto_approved"),
                    "verdict": review.get("verdict"),
                    "reason": review.get("reason"),
                    "summary": review.get("summary"),
                    "steps": review.get("steps", []),
                }
            )
        compensation = self._compensation(context, rounds)
        final = rounds[-1] if rounds else {"verdict": "planning_failed", "reason": "no plan was made"}
        status = self._status(final, len(rounds))
        total_cost = sum((Decimal(c["cost_usd"]) for c in calls), Decimal(0))
        report = {
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "goal": automation.goal or context["params"].get("goal"),
            "run": run_values_from_context(context),
            "status": status,
            "verdict": final.get("verdict"),
            "reason": final.get("reason"),
            "rounds": rounds,
            "version_chain": [f"{r['plan_id']}@{r['plan_hash'][:19]}" for r in rounds if r.get("plan_id")],
            "model_calls": calls,
            "tokens": {
                key: sum(int(c.get(key, 0)) for c in calls)
                for key in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
            },
            "cost_usd": str(total_cost),
            "budget_usd": str(automation.budget(context, automation.model or "").limit),
            "compensation": compensation,
        }
        self._log_report(report)
        self._remember(report)
        ti.xcom_push(key=REPORT_KEY, value=report)  # kept when the run fails, unlike a return value
        if status == "failed":
            raise AirflowFailException(f"automation ended with verdict '{report['verdict']}': {report['reason']}")
        return report

    def _compensation(self, context: Any, rounds: list[dict[str, Any]]) -> dict[str, list[str]]:
        """What the saga undid, and the finished compensable steps it could not undo."""
        ti = context["ti"]
        undone: list[str] = []
        not_undone: list[str] = []
        for r in range(self.automation.rounds, 0, -1):
            for k in range(self.automation.settings.max_levels, 0, -1):
                steps = ti.xcom_pull(task_ids=f"saga.r{r}_undo_level_{k}_steps") or []
                for index, step in enumerate(steps):
                    record = ti.xcom_pull(task_ids=f"saga.r{r}_undo_level_{k}", map_indexes=index, key=UNDO_RECORD_KEY)
                    (undone if isinstance(record, dict) else not_undone).append(f"round {r}: {step['id']}")
        return {"undone": undone, "not_undone": not_undone}

    def _status(self, final: dict[str, Any], rounds_used: int) -> str:
        verdict = final.get("verdict")
        if verdict == "done":
            return "succeeded"
        if verdict == "rejected":
            return "rejected"
        if verdict == "escalate" and self.automation.settings.on_escalate == "notify":
            return "escalated"
        if verdict == "replan":
            final["reason"] = f"re-plan limit reached ({self.automation.settings.max_replans}): {final.get('reason')}"
        return "failed"

    def _log_report(self, report: dict[str, Any]) -> None:
        emit(
            self.log,
            "automation.report",
            dag_id=report["dag_id"],
            run_id=report["run_id"],
            status=report["status"],
            verdict=report["verdict"],
            cost_usd=report["cost_usd"],
            model_calls=len(report["model_calls"]),
            version_chain=report["version_chain"],
            **report["tokens"],
        )
        lines = [f"Run report: {report['status'].upper()} (verdict: {report['verdict']}) {report['reason'] or ''}"]
        for r in report["rounds"]:
            lines.append(
                f"  round {r['round']}: plan {r.get('plan_id')} {r.get('plan_hash', '')[:19]} -> {r['verdict']}"
            )
            for s in r.get("steps", []):
                lines.append(
                    f"    {s['id']:<28} {s['tool']:<20} {s['status']:<8} attempts={s.get('attempts', 0)} "
                    f"duration={s.get('duration_s', '-')}s"
                )
        for c in report["model_calls"]:
            lines.append(
                f"  call {c['purpose']:<7} {c['request_id']} in={c['input_tokens']} out={c['output_tokens']} "
                f"cache_read={c['cache_read_input_tokens']} ${c['cost_usd']}"
            )
        lines.append(f"  total: ${report['cost_usd']} of ${report['budget_usd']}; tokens {report['tokens']}")
        comp = report["compensation"]
        if comp["undone"] or comp["not_undone"]:
            lines.append(f"  compensation: undone {comp['undone']}; could not undo {comp['not_undone'] or 'nothing'}")
        self.log.info("\n".join(lines))

    def _remember(self, report: dict[str, Any]) -> None:
        failed = [s["id"] for r in report["rounds"][-1:] for s in r.get("steps", []) if s["status"] != "success"]
        entry = {
            "run_id": report["run_id"],
            "goal": report["goal"],
            "verdict": report["verdict"],
            "reason": (report["reason"] or "")[:500],
            "failed_steps": failed,
            "plan_hash": report["rounds"][-1].get("plan_hash") if report["rounds"] else None,
            "data_interval_start": report["run"].get("data_interval_start"),
            "data_interval_end": report["run"].get("data_interval_end"),
        }
        try:
            if not remember(self.automation.dag_id, entry, self.automation.settings.memory_runs):
                self.log.warning("the automation's memory did not keep this run: other runs kept overwriting it")
        except Exception:  # memory is best effort: it must never change the run's outcome
            self.log.exception("could not update the automation's memory")


def replan_context(plan: dict[str, Any], review: dict[str, Any]) -> str:
    steps = [{k: s.get(k) for k in ("id", "status", "error") if s.get(k) is not None} for s in review.get("steps", [])]
    return (
        f"The previous plan {plan['id']} did not meet the goal. Reviewer's reason: {review.get('reason')}\n"
        f"Step results: {json.dumps(steps, sort_keys=True)[:3000]}\n"
        "Write a new plan that avoids these failures."
    )


def approval_markdown(plan: dict[str, Any], plan_hash: str, catalog: Catalog, usage: Any) -> str:
    """What the approver reads: the goal, one row per step, arguments as JSON, the spend so far."""
    rows = []
    for step in plan["steps"]:
        tool = catalog.get(step["tool"])
        effect = tool.side_effects if tool else "?"
        deps = ", ".join(step.get("depends_on") or []) or "-"
        rows.append(f"| `{step['id']}` | `{step['tool']}` | {effect} | {deps} |")
    spent = usage.get("cost_usd", "0") if isinstance(usage, dict) else "0"
    mutating = sum(1 for s in plan["steps"] if (t := catalog.get(s["tool"])) and t.side_effects == "mutating")
    return "\n".join(
        [
            f"**Goal**\n\n{fenced(plan['goal'])}\n",
            f"Plan `{plan['id']}` `{plan_hash[:23]}`: {len(plan['steps'])} steps, {mutating} with side effects. "
            f"Planning cost so far: ${spent}.\n",
            "| step | tool | side effects | after |",
            "|---|---|---|---|",
            *rows,
            "",
            "**Arguments**",
            "",
            fenced(
                json.dumps({s["id"]: s.get("args", {}) for s in plan["steps"]}, indent=2, ensure_ascii=False), "json"
            ),
            "",
            "Edit the plan in the form below to change it; the edit is validated before anything runs.",
        ]
    )


def _preview(value: Any, limit: int) -> Any:
    text = json.dumps(value, sort_keys=True, default=str)
    return value if len(text) <= limit else text[: limit - 15] + f"... [{len(text)} chars]"
