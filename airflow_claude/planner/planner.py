"""Claude as the planner: a goal and a catalog in, a validated plan with provenance and cost out.

The answer is obtained through a forced ``submit_plan`` tool call and goes through the same
validator as a plan file. Invalid answers are sent back with the exact errors, up to
``max_repairs`` times. Refusals, truncation and answers without a plan are distinct errors.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from airflow_claude.catalog.catalog import Catalog
from airflow_claude.errors import PlanIssue
from airflow_claude.observability import tracing
from airflow_claude.observability.records import emit
from airflow_claude.observability.redaction import redact_value
from airflow_claude.plan.limits import DEFAULT_LIMITS, PlanLimits
from airflow_claude.plan.model import SCHEMA_VERSION, Plan
from airflow_claude.plan.validator import validate_plan
from airflow_claude.planner.cache import PlanCache, cache_key_material
from airflow_claude.planner.errors import (
    NoPlanInAnswer,
    PlanningError,
    PlanRefused,
    PlanRepairExhausted,
    PlanTruncated,
)
from airflow_claude.planner.gateway import DEFAULT_MODEL, ModelGateway
from airflow_claude.planner.pricing import CallUsage, total_usage
from airflow_claude.planner.prompt import (
    PROMPT_TEMPLATE_NAME,
    SUBMIT_TOOL,
    build_request,
    repair_messages,
    template_hash,
)

__all__ = ["DEFAULT_MODEL", "ClaudePlanner", "PlanningResult", "literal_run_values"]

log = logging.getLogger(__name__)


@dataclass
class PlanningResult:
    """The validated plan and what it cost; ``cached`` plans cost nothing."""

    plan: Plan
    calls: list[CallUsage] = field(default_factory=list)
    attempts: int = 0
    cached: bool = False

    @property
    def usage(self) -> dict[str, Any]:
        return total_usage(self.calls)

    @property
    def cost_usd(self) -> Decimal:
        return sum((c.cost_usd for c in self.calls), Decimal(0))


class ClaudePlanner:
    """Turns goals into validated plans with one forced tool call (plus bounded repairs).

    Every model call goes through ``gateway``, which also brings the model, the retry policy,
    the prices and the run's budget guard; ``context_budget_tokens`` refuses an oversized prompt
    before anything is sent.
    """

    def __init__(
        self,
        gateway: ModelGateway,
        catalog: Catalog,
        *,
        limits: PlanLimits = DEFAULT_LIMITS,
        max_repairs: int = 2,
        max_tokens: int = 8192,
        context_budget_tokens: int | None = 60_000,
        cache: PlanCache | None = None,
        logger: Any = None,
    ) -> None:
        self.gateway = gateway
        self.catalog = catalog
        self.limits = limits
        self.max_repairs = max_repairs
        self.max_tokens = max_tokens
        self.context_budget_tokens = context_budget_tokens
        self.cache = cache
        self.log = logger or log
        self._parent: Plan | None = None

    @property
    def model(self) -> str:
        return self.gateway.model

    def plan(
        self,
        goal: str,
        *,
        plan_id: str | None = None,
        memory: str | None = None,
        parent: Plan | None = None,
        run: Mapping[str, Any] | None = None,
    ) -> PlanningResult:
        """Plan ``goal``; raises a :class:`~airflow_claude.planner.errors.PlanningError` subclass on failure.

        ``run`` (``run_fields.run_values``) tells Claude which run it plans for, in the user turn;
        it is not part of the cache key, so a plan written with run references serves every run.
        """
        goal = redact_value(goal)
        memory = redact_value(memory) if memory else None
        plan_id = plan_id or "plan_" + hashlib.sha256(f"{goal}\n{self.catalog.fingerprint}".encode()).hexdigest()[:12]
        material = cache_key_material(
            goal=goal,
            catalog=self.catalog,
            template_hash=template_hash(),
            model=self.model,
            options={
                "plan_id": plan_id,
                "limits": vars(self.limits),
                "max_tokens": self.max_tokens,
                "memory": memory,
                "parent": parent.hash if parent else None,
            },
        )
        with tracing.span(f"plan {plan_id}", {"airflow_claude.plan.id": plan_id}) as span:
            if self.cache is not None:
                cached = self.cache.get(material, self.catalog, self.limits)
                if cached is not None:
                    emit(self.log, "plan.cache_hit", plan_id=cached.id, plan_hash=cached.hash, model_calls=0)
                    tracing.set_attributes(
                        span, {"airflow_claude.plan.hash": cached.hash, "airflow_claude.cached": True}
                    )
                    return PlanningResult(plan=cached, cached=True)
            self._parent = parent
            result = self._plan_with_repairs(goal, plan_id, memory, run)
            tracing.set_attributes(
                span,
                {
                    "airflow_claude.plan.hash": result.plan.hash,
                    "airflow_claude.cached": False,
                    "airflow_claude.attempts": result.attempts,
                },
            )
            if self.cache is not None:
                literal = literal_run_values(result.plan, run or {})
                if literal:  # tomorrow's run would replay today's dates: plan again then
                    emit(self.log, "plan.cache_skipped", plan_id=plan_id, literal_run_values=literal)
                else:
                    self.cache.put(material, result.plan)
            return result

    def _plan_with_repairs(
        self, goal: str, plan_id: str, memory: str | None, run: Mapping[str, Any] | None
    ) -> PlanningResult:
        request = build_request(
            self.catalog,
            goal,
            model=self.model,
            limits=self.limits,
            max_tokens=self.max_tokens,
            memory=memory,
            run=run,
        )
        calls: list[CallUsage] = []
        try:
            return self._attempts(request, goal, plan_id, calls)
        except PlanningError as exc:
            exc.calls = list(calls)  # usage is reported on every failure path too
            emit(
                self.log,
                "plan.failed",
                level=logging.WARNING,
                plan_id=plan_id,
                error=type(exc).__name__,
                retryable=exc.retryable,
                **total_usage(calls),
            )
            raise

    def _attempts(self, request: dict[str, Any], goal: str, plan_id: str, calls: list[CallUsage]) -> PlanningResult:
        issues: list[PlanIssue] = []
        for attempt in range(1, self.max_repairs + 2):
            message = self._call(request, "plan" if attempt == 1 else "repair", plan_id, calls)
            tool_use = self._submitted_plan(message)
            # model output is data, and masked like any other: a secret it repeats is never stored or echoed
            document = self._document(goal, plan_id, redact_value(tool_use.input), calls, attempt - 1)
            with tracing.validation_span(plan_id, attempt=attempt) as span:
                result = validate_plan(document, self.catalog, limits=self.limits)
                tracing.record_validation(span, result)
            if result.ok and result.plan is not None:
                emit(
                    self.log,
                    "plan.validated",
                    plan_id=plan_id,
                    plan_hash=result.plan.hash,
                    attempts=attempt,
                    steps=len(result.plan.steps),
                    **total_usage(calls),
                )
                return PlanningResult(plan=result.plan, calls=calls, attempts=attempt)
            issues = result.issues
            emit(
                self.log,
                "plan.invalid",
                level=logging.WARNING,
                plan_id=plan_id,
                attempt=attempt,
                codes=sorted({i.code for i in issues}),
                problems=len(issues),
            )
            problems = "\n".join(f"- {issue}" for issue in issues)
            answer = redact_value([block.model_dump(mode="json", exclude_none=True) for block in message.content])
            request = {**request, "messages": request["messages"] + repair_messages(answer, tool_use.id, problems)}
        raise PlanRepairExhausted(self.max_repairs + 1, issues)

    def _call(self, request: dict[str, Any], purpose: str, plan_id: str, calls: list[CallUsage]) -> Any:
        message, usage = self.gateway.call(
            purpose,
            request,
            prompt_template=PROMPT_TEMPLATE_NAME,
            max_input_tokens=self.context_budget_tokens,
            plan_id=plan_id,
        )
        calls.append(usage)
        return message

    def _submitted_plan(self, message: Any) -> Any:
        text = " ".join(getattr(b, "text", "") for b in message.content if b.type == "text").strip()
        if message.stop_reason == "refusal":
            raise PlanRefused(f"Claude declined to plan this goal: {text[:300] or '(no explanation)'}")
        if message.stop_reason == "max_tokens":
            raise PlanTruncated(
                f"the answer hit max_tokens={self.max_tokens} before the plan was complete; "
                "raise max_tokens or split the goal"
            )
        for block in message.content:
            if block.type == "tool_use" and block.name == SUBMIT_TOOL:
                if not isinstance(block.input, dict):
                    raise NoPlanInAnswer(f"{SUBMIT_TOOL} was called with a {type(block.input).__name__}, not an object")
                return block
        other = [b.name for b in message.content if b.type == "tool_use"]
        detail = f"it called {other}" if other else f"it answered in plain text: {text[:300]!r}"
        raise NoPlanInAnswer(f"Claude did not call {SUBMIT_TOOL}; {detail}")

    def _document(
        self, goal: str, plan_id: str, draft: dict[str, Any], calls: list[CallUsage], repairs: int
    ) -> dict[str, Any]:
        usage = total_usage(calls)
        return {
            "schema_version": SCHEMA_VERSION,
            "id": plan_id,
            "goal": goal,
            "steps": draft.get("steps"),
            "provenance": {
                "created_by": "claude",
                "created_at": datetime.now(UTC).isoformat(),
                "catalog_fingerprint": self.catalog.fingerprint,
                "model": self.model,
                "prompt_template": PROMPT_TEMPLATE_NAME,
                "prompt_hash": template_hash(),
                "request_ids": [c.request_id for c in calls if c.request_id],
                "usage": {
                    k: usage[k]
                    for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
                },
                "cost_usd": usage["cost_usd"],
                "repair_attempts": repairs,
                "parent_plan_id": self._parent.id if self._parent else None,
                "parent_plan_hash": self._parent.hash if self._parent else None,
            },
        }


def literal_run_values(plan: Plan, run: Mapping[str, Any]) -> list[str]:
    """This run's dates and id written literally in the plan's arguments (sorted): a plan that holds
    them is right for this run only, so it is not cached."""
    needles = {v for k, v in run.items() if isinstance(v, str) and k != "run_type" and len(v) >= 8}
    needles |= {v[:10] for v in list(needles) if len(v) > 10 and v[4:5] == "-"}  # a timestamp's date
    found: set[str] = set()
    stack: list[Any] = [step.args for step in plan.steps]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            found.update(n for n in needles if n in item)
    return sorted(found)
