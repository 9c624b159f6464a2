"""Export a run to reproduce it offline: its plan, a fake-Claude cassette of its model exchanges, its report.

The cassette is a script for :mod:`airflow_claude.testing.fake_claude` (``--script cassette.json``):
one rule per model call the run made, in order, each answering with what Claude answered then,
rebuilt from the stored proposal (``submit_plan``) and review (``submit_review``). A round whose
plan came from the plan cache or a replay made no call, so it gets no rule.
"""

from __future__ import annotations

from typing import Any

from airflow_claude.automation.contracts import REPORT_KEY, USAGE_KEY
from airflow_claude.automation.review import REVIEW_TOOL
from airflow_claude.observability.redaction import redact_value
from airflow_claude.planner.prompt import SUBMIT_TOOL
from airflow_claude.ui.models import RunDetail
from airflow_claude.ui.runs import RunData, automation_prefix, rounds_of

EXPORT_FORMAT = "airflow-claude-export/1"
_VERDICTS = ("done", "replan", "escalate")  # what submit_review may answer


def _calls(data: RunData, task_id: str) -> int:
    usage = data.xcom(task_id, USAGE_KEY)
    return int(usage.get("calls") or len(usage.get("per_call") or [])) if isinstance(usage, dict) else 0


def cassette(data: RunData) -> dict[str, Any]:
    """The fake-Claude rules that answer this run's model calls in order (none for a compiled-plan run)."""
    prefix = automation_prefix(data)
    rules: list[dict[str, Any]] = []
    if prefix is None:
        return {"rules": rules}
    for r in range(1, rounds_of(data, prefix) + 1):
        plan_task, review_task = f"{prefix}attempt_{r}.plan", f"{prefix}attempt_{r}.review"
        proposal = data.xcom(plan_task)
        if isinstance(proposal, dict) and isinstance(proposal.get("plan"), dict):
            made_by_model = not proposal.get("cached") and not proposal.get("replay_of") and _calls(data, plan_task)
            if made_by_model:
                rules.append(
                    {
                        "comment": f"round {r}: plan {proposal['plan'].get('id')} {proposal.get('plan_hash')}",
                        "match": {"tool_name": SUBMIT_TOOL},
                        "times": 1,
                        "respond": {
                            "tool_use": {"name": SUBMIT_TOOL, "input": {"steps": proposal["plan"].get("steps", [])}}
                        },
                    }
                )
        review = data.xcom(review_task)
        if isinstance(review, dict) and review.get("verdict") in _VERDICTS and _calls(data, review_task):
            answer = {k: review.get(k) or "" for k in ("verdict", "reason", "summary")}
            rules.append(
                {
                    "comment": f"round {r}: review",
                    "match": {"tool_name": REVIEW_TOOL},
                    "times": 1,
                    "respond": {"tool_use": {"name": REVIEW_TOOL, "input": answer}},
                }
            )
    return {"rules": redact_value(rules)}


def export_bundle(data: RunData, detail: RunDetail) -> dict[str, Any]:
    """The export download: plan, its hash, the cassette, the calls as made and the report (None for a compiled run).

    The cassette holds the answers; ``calls`` says what each exchange was (purpose, model, request
    id, tokens, cost). Prompts are not stored anywhere, so no export holds them.
    """
    prefix = automation_prefix(data)
    report = data.xcom(f"{prefix}report", REPORT_KEY) if prefix is not None else None
    return {
        "format": EXPORT_FORMAT,
        "source": {"dag_id": data.dag_id, "run_id": data.run_id},
        "kind": detail.kind,
        "plan": detail.plan,
        "plan_hash": detail.plan_hash,
        "plan_exact": detail.plan_exact,
        "cassette": cassette(data),
        "calls": [call.model_dump(mode="json") for call in detail.calls],  # each call made: model, ids, tokens, cost
        "report": redact_value(report) if isinstance(report, dict) else None,
    }
