"""Replay in an automation: a run whose conf carries a stored plan runs that exact plan again, no model call.

The request is :class:`~airflow_claude.runtime.replay.ReplayRequest`: the UI or ``airflow-claude
replay`` triggers the automation's DAG with ``ReplayRequest(...).run_conf()``. Round 1's plan task
then checks the plan (the plan model, its hash against the requested one, the validator against
the automation's *current* catalog and limits) and proposes it unchanged: same id, same hash. The
approval policy applies as usual; the review judges from the step results alone.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from airflow_claude.automation.automation import Automation
from airflow_claude.errors import PlanIssue
from airflow_claude.plan.model import Plan
from airflow_claude.plan.validator import validate_plan
from airflow_claude.runtime.replay import (
    HASH_MISMATCH,
    REPLAY_CONF_KEY,
    ReplayRefused,
    ReplayRequest,
    parse_request,
    run_conf_of,
)

REFUSED = "replay_refused"  # the Outcome verdict of a refused replay


def _aimed_elsewhere(raw: Any, automation_id: str) -> bool:
    target = raw.get("automation_id") if isinstance(raw, dict) else None
    return isinstance(target, str) and target != automation_id


def replay_request(context: Any, automation_id: str) -> ReplayRequest | None:
    """The replay this run asks of automation ``automation_id``; None when it asks none (or another's).

    A malformed request raises :class:`ReplayRefused` naming the conf key and each bad field.
    """
    raw = run_conf_of(context).get(REPLAY_CONF_KEY)
    if raw is None or _aimed_elsewhere(raw, automation_id):
        return None
    return parse_request(raw)


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
    if request.plan is None:
        raise ReplayRefused(
            f"replay of plan {request.plan_hash} refused: the request carries no plan "
            "(an automation replays only the plan its request carries)"
        )
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
