"""What a DAG author decides about an automation; the trigger form may tighten some of it per run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Literal

from airflow_claude.plan.limits import PlanLimits


@dataclass(frozen=True)
class AutomationSettings:
    """Limits, approval, budget, re-planning and memory for one automation.

    With ``plan_cache``, a run whose goal, catalog, prompt and model are unchanged and whose
    previous run was reviewed ``done`` reuses the stored plan with no planning call; after a
    failure it plans again, with the memory of what went wrong. ``"airflow-variables"`` keeps the
    entries in Airflow Variables (the metadata database: every worker on every host sees them);
    an object-storage URL such as ``s3://bucket/plans`` is shared too; a local folder is seen by
    one host only, so on several Celery or Kubernetes workers each host would plan once for itself.

    ``claude_retries`` and ``claude_retry_delay`` (doubling, capped at ten minutes) let a storm of
    429/529 answers queue the plan and review tasks instead of failing the run; terminal errors
    (refusal, spend limit, invalid plans after repairs, budget) fail at once.

    ``review="on_failure"`` asks Claude for a verdict only when a step did not succeed; a round
    whose steps all succeeded is ``done`` without a model call. With a plan cache, N good nights
    then cost one model call in all (the first night's plan). The risk: a run whose steps succeed
    on wrong or empty data is not looked at, so make a tool fail when the data must stop the run.

    ``max_levels`` (the longest chain of dependent steps) and ``max_parallel`` (steps running at
    once, the mapped step task's ``max_active_tis_per_dagrun``) bound the plan, not the DAG: the
    steps of a round are one mapped task whatever the plan's shape, and a step that depends on
    others waits for them in the triggerer. A plan outside them is refused by the validator, and
    Claude is told so.

    ``allow_replay=False`` refuses replays (a run whose conf carries a stored plan, from the UI or
    ``airflow-claude replay``): its plan task fails with ``replay_refused`` and nothing runs.
    Whoever may trigger the DAG may otherwise ask it to run any plan its catalog validates.
    """

    max_steps: int = 12
    max_levels: int = 12
    max_parallel: int = 16
    max_replans: int = 1
    budget_usd: Decimal | str = Decimal("1.00")
    require_approval: bool = True
    approval_timeout: timedelta | None = None
    on_approval_timeout: Literal["reject", "approve"] = "reject"
    on_escalate: Literal["fail", "notify"] = "fail"
    max_step_retries: int = 3
    step_retry_delay: timedelta = timedelta(seconds=10)
    memory_runs: int = 5
    memory_max_chars: int = 4000
    review_output_chars: int = 1500
    plan_cache: str | None = None  # "airflow-variables", an object-storage URL or a folder: reuse the plan
    claude_retries: int = 6
    claude_retry_delay: timedelta = timedelta(seconds=20)
    plan_max_tokens: int = 8192
    review_max_tokens: int = 2048
    review: Literal["always", "on_failure"] = "always"
    allow_replay: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.max_levels <= 100:
            raise ValueError("max_levels must be between 1 and 100")
        if not 1 <= self.max_steps <= 1024:
            raise ValueError("max_steps must be between 1 and 1024 (Airflow's max_map_length)")
        if self.max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        if not 0 <= self.max_replans <= 5:
            raise ValueError("max_replans must be between 0 and 5 (each re-plan round is a task group)")
        if Decimal(self.budget_usd) <= 0:
            raise ValueError("budget_usd must be positive")
        if self.review not in ("always", "on_failure"):
            raise ValueError(f"review must be 'always' or 'on_failure', not {self.review!r}")

    def limits(self, max_steps: int | None = None) -> PlanLimits:
        """The validator limits for this automation (a run may ask for fewer steps, never more)."""
        steps = min(max_steps or self.max_steps, self.max_steps)
        return PlanLimits(max_steps=steps, max_depth=self.max_levels, max_level_width=steps)
