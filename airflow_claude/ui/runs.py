"""The read side, pure: a run's rows (task instances, XComs, ledger, serialized DAG) to its summary and detail.

:mod:`airflow_claude.ui.store` reads the rows from the metadata DB into a :class:`RunData`; everything
here works on that plain data, so it is tested without a database. Every text that reaches a page
goes through :func:`shown` (masked by Airflow's masker, then truncated).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from airflow_claude.automation.contracts import (
    COMMITTED_KEY,
    GOAL_KEY,
    OUTCOME_KEY,
    REPORT_KEY,
    RETURN_KEY,
    STEP_RECORD_KEY,
    USAGE_KEY,
)
from airflow_claude.observability.redaction import redact_value
from airflow_claude.plan.diff import plan_changes
from airflow_claude.runtime.provenance import PROVENANCE_XCOM_KEY
from airflow_claude.runtime.replay import REPLAY_CONF_KEY
from airflow_claude.ui.models import CallView, LedgerState, RoundView, RunDetail, RunSummary, StepView, VersionEntry

#: The task of round 1's plan: every automation has one; its prefix is the automation's task group.
_PLAN_TASK = re.compile(r"^(?P<prefix>(?:.*\.)?)attempt_(?P<round>\d+)\.plan$")
SAGA_UNDO = "saga.undo_"
OUTPUT_CHARS = 300
#: Task instance states in which a step has not started a try yet (its try number may already be 1)
_NOT_STARTED = (None, "none", "scheduled", "queued", "skipped", "upstream_failed", "removed")
TEXT_CHARS = 2000


@dataclass
class TaskRow:
    """One task instance of the run."""

    state: str | None = None
    try_number: int = 0
    queue: str | None = None


@dataclass
class DagTask:
    """One task of the run's serialized DAG."""

    upstream: list[str] = field(default_factory=list)
    doc_md: str | None = None
    task_type: str | None = None


@dataclass
class PreviousVersion:
    """The latest earlier DAG version of a compiled plan's DAG that ran another plan (rebuilt from it)."""

    plan_hash: str
    dag_version: int
    plan: dict[str, Any]


@dataclass
class RunData:
    """Everything the read side knows of one DAG run, as plain data."""

    dag_id: str
    run_id: str
    state: str | None = None
    start_date: str | None = None
    conf: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    xcoms: dict[tuple[str, int, str], Any] = field(default_factory=dict)
    tasks: dict[tuple[str, int], TaskRow] = field(default_factory=dict)
    ledger: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)  # "result"/"started" -> entry
    dag_tasks: dict[str, DagTask] = field(default_factory=dict)
    dag_doc: str | None = None
    dag_description: str | None = None
    plan_file: dict[str, Any] | None = None  # the compiled plan's file, when its hash matched
    previous_version: PreviousVersion | None = None  # a compiled plan's DAG: the last version with another plan
    data_interval: tuple[str, str] | None = None  # ISO start and end, when the run has one

    def xcom(self, task_id: str, key: str = RETURN_KEY, map_index: int = -1) -> Any:
        return self.xcoms.get((task_id, map_index, key))


def shown(value: Any, limit: int = TEXT_CHARS) -> str | None:
    """``value`` as short, masked text: what a page or an API answer may show."""
    if value is None:
        return None
    value = redact_value(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _who(user: Any) -> str | None:
    """A person's name from an HITL ``responded_by_user`` (a dict, a name, or nothing)."""
    if isinstance(user, dict):
        user = user.get("name") or user.get("id")
    return shown(user, 200) if user else None


def _money(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


def automation_prefixes(data: RunData) -> list[str]:
    """The task-group prefix of each automation in the run's DAG (``""`` for a whole-DAG automation)."""
    found: set[str] = set()
    for task_id in [*data.dag_tasks, *(t for t, _ in data.tasks), *(t for t, _, _ in data.xcoms)]:
        match = _PLAN_TASK.match(task_id)
        if match:
            found.add(match["prefix"])
    return sorted(found)


def rounds_of(data: RunData, prefix: str) -> int:
    numbers = [
        int(m["round"])
        for t in [*data.dag_tasks, *(t for t, _ in data.tasks), *(t for t, _, _ in data.xcoms)]
        if (m := _PLAN_TASK.match(t)) and m["prefix"] == prefix
    ]
    return max(numbers, default=0)


def automation_prefix(data: RunData) -> str | None:
    """The automation a run page shows (None: a compiled-plan run).

    Several automations in one DAG: the one that reported, else the one that planned, else the first.
    """
    prefixes = automation_prefixes(data)
    if not prefixes:
        return None
    return min(
        prefixes,
        key=lambda p: (
            data.xcom(p + "report", REPORT_KEY) is None,
            data.xcom(p + "attempt_1.plan", GOAL_KEY) is None,
            p,
        ),
    )


def build_detail(data: RunData) -> RunDetail:
    """The run page's data: an automation run when the DAG holds an automation, else a compiled-plan run."""
    prefix = automation_prefix(data)
    detail = _plan_detail(data) if prefix is None else _automation_detail(data, prefix)
    detail.data_interval = list(data.data_interval) if data.data_interval else None
    return detail


def build_summary(data: RunData) -> RunSummary:
    return build_detail(data).summary()


# --- automation runs ---------------------------------------------------------------------------


def _automation_detail(data: RunData, prefix: str) -> RunDetail:
    report = data.xcom(prefix + "report", REPORT_KEY)
    report = report if isinstance(report, dict) else None
    reported = {r.get("round"): r for r in (report or {}).get("rounds", []) if isinstance(r, dict)}
    rounds: list[RoundView] = []
    calls: list[CallView] = []
    chain: list[VersionEntry] = []
    plan: dict[str, Any] | None = None
    replay_of: Any = None
    previous_reason: str | None = None
    previous_plan: dict[str, Any] | None = None
    previous_hash: str | None = None
    for r in range(1, rounds_of(data, prefix) + 1):
        task = f"{prefix}attempt_{r}."
        for name in ("plan", "review"):
            usage = data.xcom(task + name, USAGE_KEY)
            for call in usage.get("per_call", []) if isinstance(usage, dict) else []:
                calls.append(_call(call))
        proposal = data.xcom(task + "plan")
        committed = data.xcom(task + "commit", COMMITTED_KEY)
        outcome = data.xcom(task + "plan", OUTCOME_KEY)
        proposal = proposal if isinstance(proposal, dict) and "plan" in proposal else None
        committed = committed if isinstance(committed, dict) and "plan" in committed else None
        if r == 1 and proposal is not None:
            replay_of = proposal.get("replay_of")
        if proposal is None and committed is None:
            if outcome is not None or r in reported:
                source = outcome if isinstance(outcome, dict) else reported.get(r, {})
                rounds.append(RoundView(round=r, verdict=source.get("verdict"), reason=shown(source.get("reason"))))
            continue
        round_plan = (committed or proposal or {})["plan"]
        plan = round_plan
        review = data.xcom(task + "review")
        review = review if isinstance(review, dict) else data.xcom(task + "review", OUTCOME_KEY)
        review = review if isinstance(review, dict) else reported.get(r, {})
        view = RoundView(
            round=r,
            plan_id=round_plan.get("id"),
            plan_hash=(committed or proposal or {}).get("plan_hash"),
            parent_plan_id=(round_plan.get("provenance") or {}).get("parent_plan_id"),
            edited=bool((committed or {}).get("edited")),
            approved_by=_who((committed or {}).get("approved_by")),
            auto_approved=(committed or {}).get("auto_approved") if committed else None,
            verdict=review.get("verdict"),
            reason=shown(review.get("reason")),
            steps=_automation_steps(data, round_plan, (committed or {}).get("locations") or {}),
        )
        rounds.append(view)
        chain.append(
            VersionEntry(
                round=r,
                plan_id=view.plan_id or "",
                plan_hash=view.plan_hash,
                parent_plan_id=view.parent_plan_id,
                created_by=shown((round_plan.get("provenance") or {}).get("created_by"), 200),
                edited=view.edited,
                approved_by=view.approved_by,
                auto_approved=view.auto_approved,
                replan_reason=previous_reason,
                changed_since=previous_hash,
                changes=_changes(previous_plan, (proposal or committed or {})["plan"]),
                edits=_changes((proposal or {}).get("plan"), committed["plan"] if committed else None),
            )
        )
        previous_reason = view.reason if view.verdict == "replan" else None
        previous_plan, previous_hash = round_plan, view.plan_hash
    if report is not None and report.get("model_calls"):
        calls = [_call(c) for c in report["model_calls"] if isinstance(c, dict)]
    last = next((r for r in reversed(rounds) if r.plan_id), None)
    final = rounds[-1] if rounds else None
    goal = (report or {}).get("goal") or data.xcom(prefix + "attempt_1.plan", GOAL_KEY) or _replay_goal(data.conf)
    if replay_of is None:
        replay_of = (report or {}).get("replay_of") or _conf_replay(data.conf)
    cost = (report or {}).get("cost_usd") or str(sum((_money(c.cost_usd) for c in calls), Decimal(0)))
    compensation = (report or {}).get("compensation") or {"undone": [], "not_undone": []}
    return RunDetail(
        dag_id=data.dag_id,
        run_id=data.run_id,
        kind="automation",
        state=data.state,
        start_date=data.start_date,
        goal=shown(goal),
        verdict=(report or {}).get("verdict") or (final.verdict if final else None),
        status=(report or {}).get("status"),
        reason=shown((report or {}).get("reason") or (final.reason if final else None)),
        cost_usd=str(cost),
        model_calls=len(calls),
        approver=_approver(last),
        plan_id=last.plan_id if last else None,
        plan_hash=last.plan_hash if last else None,
        plan=redact_value(plan) if plan is not None else None,
        plan_exact=plan is not None,
        rounds=rounds,
        version_chain=chain,
        calls=calls,
        compensation={k: [str(shown(v, 300)) for v in compensation.get(k, [])] for k in ("undone", "not_undone")},
        replay_of=redact_value(replay_of) if isinstance(replay_of, dict) else None,
    )


def _changes(before: Any, after: Any) -> list[str]:
    """What changed from one plan version to the next, masked and cut for the page."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    return [str(shown(line, 300)) for line in plan_changes(before, after)][:50]


def _approver(last: RoundView | None) -> str | None:
    if last is None:
        return None
    if last.approved_by:
        return last.approved_by
    return "auto (policy)" if last.auto_approved else None


def _conf_replay(conf: dict[str, Any]) -> dict[str, Any] | None:
    request = conf.get(REPLAY_CONF_KEY) if isinstance(conf, dict) else None
    if not isinstance(request, dict):
        return None
    return {k: request.get(k) for k in ("plan_hash", "source", "requested_by")}


def _replay_goal(conf: dict[str, Any]) -> Any:
    """A replay run's goal before its plan task ran: the stored plan's own (masked when it was made)."""
    request = conf.get(REPLAY_CONF_KEY) if isinstance(conf, dict) else None
    plan = request.get("plan") if isinstance(request, dict) else None
    return plan.get("goal") if isinstance(plan, dict) else None


def _call(call: dict[str, Any]) -> CallView:
    return CallView(
        purpose=shown(call.get("purpose"), 100),
        request_id=shown(call.get("request_id"), 200),
        model=shown(call.get("model"), 200),
        input_tokens=int(call.get("input_tokens") or 0),
        output_tokens=int(call.get("output_tokens") or 0),
        cache_read_input_tokens=int(call.get("cache_read_input_tokens") or 0),
        cost_usd=str(_money(call.get("cost_usd") or 0)),
    )


def _automation_steps(data: RunData, plan: dict[str, Any], locations: dict[str, Any]) -> list[StepView]:
    steps: list[StepView] = []
    for step in plan.get("steps", []):
        where = locations.get(step.get("id"))
        if isinstance(where, list | tuple) and len(where) == 2:
            task_id, index = str(where[0]), int(where[1])
            steps.append(_step_view(data, step, task_id, index))
        else:  # not committed (rejected, or still waiting for approval): nothing ran
            steps.append(StepView(id=step["id"], tool=step["tool"], depends_on=list(step.get("depends_on", []))))
    return steps


def _step_view(data: RunData, step: dict[str, Any], task_id: str, index: int) -> StepView:
    ti = data.tasks.get((task_id, index))
    record = data.xcom(task_id, STEP_RECORD_KEY, index)
    record = record if isinstance(record, dict) else {}
    stamp = data.xcom(task_id, PROVENANCE_XCOM_KEY, index)
    stamp = stamp if isinstance(stamp, dict) else {}
    entries = data.ledger.get((task_id, index), {})
    result, started = entries.get("result"), entries.get("started")
    ledger: LedgerState = "result" if isinstance(result, dict) else "started" if isinstance(started, dict) else "none"
    key = stamp.get("idempotency_key") or next(
        (e.get("idempotency_key") for e in (result, started) if isinstance(e, dict)), None
    )
    if record.get("status") == "success" or "output" in record:
        summary = shown(record.get("output"), OUTPUT_CHARS)
    elif record.get("error"):
        summary = shown(record.get("error"), OUTPUT_CHARS)
    else:  # a compiled plan's step: its return value is its output
        summary = shown(data.xcom(task_id, RETURN_KEY, index), OUTPUT_CHARS)
    attempts = int(record.get("attempts") or 0) or (ti.try_number if ti and ti.state not in _NOT_STARTED else 0)
    return StepView(
        id=step["id"],
        tool=step["tool"],
        depends_on=list(step.get("depends_on", [])),
        task_id=task_id,
        map_index=index,
        state=ti.state if ti else None,
        attempts=attempts,
        idempotency_key=shown(key, 100),
        ledger=ledger,
        output_summary=summary,
        queue=ti.queue if ti else None,
    )


# --- compiled-plan runs --------------------------------------------------------------------------


def doc_field(doc: str | None, name: str) -> str | None:
    match = re.search(rf"^\| {re.escape(name)} \| `([^`]*)` \|$", doc or "", re.MULTILINE)
    return match.group(1) if match else None


def _fence_after(doc: str | None, heading: str) -> str | None:
    """The text of the first code fence after ``heading`` in a doc written by ``factory.docs``."""
    if not doc or heading not in doc:
        return None
    match = re.search(r"^(`{3,})[a-z]*\n(.*?)\n\1$", doc[doc.index(heading) :], re.MULTILINE | re.DOTALL)
    return match.group(2) if match else None


def rebuilt_plan(data: RunData, plan_id: str | None) -> dict[str, Any]:
    """A display-only plan from the serialized DAG: steps, tools, dependencies and arguments.

    Not exact (retries and timeouts are not told apart from the tools' defaults, provenance is
    partial), so its hash is not the plan's: a replay or an export needs the plan file.
    """
    steps = []
    for task_id, task in data.dag_tasks.items():
        if task_id.startswith("saga.") or not task.doc_md or "### step" not in task.doc_md:
            continue
        tool = re.search(r"tool `([^`]+)`", task.doc_md)
        try:
            args = json.loads(_fence_after(task.doc_md, "**Arguments**") or "{}")
        except ValueError:
            args = {}
        steps.append(
            {"id": task_id, "tool": tool.group(1) if tool else "?", "args": args, "depends_on": sorted(task.upstream)}
        )
    return {
        "id": plan_id or data.dag_id,
        "goal": _fence_after(data.dag_doc, "**Goal**") or data.dag_description or "",
        "steps": steps,
    }


def compiled_plan_ref(data: RunData) -> tuple[str | None, str | None]:
    """The id and hash of the plan a compiled-plan run ran: its steps' provenance, else its DAG's doc."""
    stamps = [v for (_, _, key), v in sorted(data.xcoms.items()) if key == PROVENANCE_XCOM_KEY and isinstance(v, dict)]
    plan_id = next((s.get("plan_id") for s in stamps), None) or doc_field(data.dag_doc, "plan id")
    plan_hash = next((s.get("plan_hash") for s in stamps), None) or doc_field(data.dag_doc, "plan hash")
    return plan_id, plan_hash


def _plan_detail(data: RunData) -> RunDetail:
    plan_id, plan_hash = compiled_plan_ref(data)
    exact = data.plan_file is not None
    plan = data.plan_file if exact else rebuilt_plan(data, plan_id)
    assert plan is not None
    steps = [_step_view(data, s, s["id"], -1) for s in plan.get("steps", []) if isinstance(s, dict)]
    undone: list[str] = []
    not_undone: list[str] = []
    for (task_id, _), ti in sorted(data.tasks.items()):
        if task_id.startswith(SAGA_UNDO):
            sid = task_id[len(SAGA_UNDO) :]
            if ti.state == "success":
                undone.append(sid)
            elif ti.state in ("failed", "upstream_failed"):
                not_undone.append(sid)
    status = {"success": "succeeded", "failed": "failed"}.get(data.state or "")
    view = RoundView(round=1, plan_id=plan_id, plan_hash=plan_hash, verdict=status, steps=steps)
    provenance = plan.get("provenance") or {}
    before = data.previous_version  # both sides rebuilt from their DAG versions: alike where the plans are
    changes = _changes(before.plan, rebuilt_plan(data, plan_id)) if before is not None else []
    chain = (
        [
            VersionEntry(
                round=1,
                plan_id=plan_id or "",
                plan_hash=plan_hash,
                parent_plan_id=provenance.get("parent_plan_id"),
                created_by=shown(provenance.get("created_by"), 200),
                changed_since=before.plan_hash if before is not None else None,
                changes=changes,
            )
        ]
        if plan_id
        else []
    )
    return RunDetail(
        dag_id=data.dag_id,
        run_id=data.run_id,
        kind="plan",
        state=data.state,
        start_date=data.start_date,
        goal=shown(plan.get("goal") or data.dag_description),
        verdict=None,
        status=status,
        plan_id=plan_id,
        plan_hash=plan_hash,
        plan=redact_value(plan),
        plan_exact=exact,
        rounds=[view],
        version_chain=chain,
        compensation={"undone": undone, "not_undone": not_undone},
        replay_of=redact_value(_conf_replay(data.conf)),
    )
