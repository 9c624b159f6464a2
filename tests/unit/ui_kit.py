"""Run data for the plugin's unit tests: what an automation run and a compiled-plan run leave in the DB."""

from __future__ import annotations

from typing import Any

from airflow_claude.plan.model import Plan
from airflow_claude.ui.runs import DagTask, RunData, TaskRow

HOSTILE = "<script>alert(1)</script>"


def plan_doc(
    plan_id: str = "orders_ab12cd34_v1", goal: str = "Report revenue", parent: str | None = None
) -> dict[str, Any]:
    doc = {
        "schema_version": "1",
        "id": plan_id,
        "goal": goal,
        "steps": [
            {"id": "extract", "tool": "query", "args": {"sql": "select 1"}, "depends_on": []},
            {
                "id": "summarise",
                "tool": "summarise",
                "args": {"rows": {"$ref": "steps.extract.output"}},
                "depends_on": ["extract"],
            },
            {"id": "notify", "tool": "notify", "args": {"text": "done"}, "depends_on": ["summarise"]},
        ],
        "provenance": {"created_by": "claude", "parent_plan_id": parent},
    }
    return Plan.model_validate(doc).model_dump(mode="json")


def plan_hash(doc: dict[str, Any]) -> str:
    return Plan.model_validate(doc).hash


def call(purpose: str, request_id: str, cost: str = "0.0100") -> dict[str, Any]:
    return {
        "purpose": purpose,
        "model": "claude-sonnet-4-5",
        "request_id": request_id,
        "input_tokens": 1000,
        "output_tokens": 200,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 300,
        "cost_usd": cost,
    }


def automation_run(prefix: str = "claude.", goal: str = "Report revenue", with_report: bool = True) -> RunData:
    """Two rounds: round 1 re-planned after ``notify`` failed, round 2 (edited by ann) succeeded."""
    data = RunData(dag_id="orders_pipeline", run_id="manual__2026-12-04T10:00:00+00:00", state="success")
    plans = {1: plan_doc("orders_v1", goal), 2: plan_doc("orders_v2", goal, parent="orders_v1")}
    for r, plan in plans.items():
        task = f"{prefix}attempt_{r}."
        h = plan_hash(plan)
        data.xcoms[(task + "plan", -1, "return_value")] = {"plan": plan, "plan_hash": h, "goal": goal, "model": "m"}
        data.xcoms[(task + "plan", -1, "usage")] = {"calls": 1, "per_call": [call("plan", f"req_plan_{r}")]}
        data.xcoms[(task + "review", -1, "usage")] = {"calls": 1, "per_call": [call("review", f"req_review_{r}")]}
        locations = {s["id"]: [task + "steps", i] for i, s in enumerate(plan["steps"])}
        data.xcoms[(task + "commit", -1, "committed")] = {
            "plan": plan,
            "plan_hash": h,
            "locations": locations,
            "edited": r == 2,
            "approved_by": {"name": "ann"} if r == 2 else None,
            "auto_approved": r == 1,
        }
        verdict, reason = ("replan", "notify failed: channel missing") if r == 1 else ("done", "all good")
        data.xcoms[(task + "review", -1, "return_value")] = {
            "verdict": verdict,
            "reason": reason,
            "summary": "s",
            "reviewed": True,
            "plan_id": plan["id"],
            "plan_hash": h,
        }
        for i, step in enumerate(plan["steps"]):
            failed = r == 1 and step["id"] == "notify"
            data.tasks[(task + "steps", i)] = TaskRow("failed" if failed else "success", 3 if failed else 1, "default")
            record: dict[str, Any] = {"step_id": step["id"], "tool": step["tool"], "attempts": 3 if failed else 1}
            if failed:
                record.update(status="failed", error="ValueError: channel missing")
            else:
                record.update(status="success", output={"rows": 3, "note": HOSTILE})
            data.xcoms[(task + "steps", i, "step_record")] = record
            key = f"ik_{r}_{step['id']}"
            data.xcoms[(task + "steps", i, "airflow_claude_provenance")] = {
                "idempotency_key": key,
                "plan_id": plan["id"],
            }
            entry = {"idempotency_key": key, "try_number": 1}
            data.ledger[(task + "steps", i)] = (
                {"started": entry} if failed else {"started": entry, "result": {**entry, "output": 1}}
            )
        data.tasks[(task + "plan", -1)] = TaskRow("success", 1)
    data.xcoms[(prefix + "attempt_1.plan", -1, "goal")] = goal
    data.tasks[(prefix + "attempt_3.plan", -1)] = TaskRow("skipped", 0)  # a round that was not needed
    if with_report:
        data.xcoms[(prefix + "report", -1, "report")] = {
            "dag_id": data.dag_id,
            "run_id": data.run_id,
            "automation_id": "orders_pipeline.claude",
            "goal": goal,
            "status": "succeeded",
            "verdict": "done",
            "reason": "all good",
            "rounds": [],
            "version_chain": [],
            "model_calls": [
                call("plan", "req_plan_1"),
                call("review", "req_review_1"),
                call("plan", "req_plan_2"),
                call("review", "req_review_2"),
            ],
            "cost_usd": "0.0400",
            "compensation": {"undone": ["round 1: extract"], "not_undone": []},
        }
    return data


def compiled_run(plan: dict[str, Any] | None = None, with_file: bool = True) -> RunData:
    plan = plan or plan_doc("nightly_orders", "Nightly orders")
    h = plan_hash(plan)
    data = RunData(dag_id="nightly_orders", run_id="scheduled__2026-12-04", state="failed", tags=["airflow-claude"])
    for step in plan["steps"]:
        ok = step["id"] != "notify"
        data.tasks[(step["id"], -1)] = TaskRow("success" if ok else "failed", 1 if ok else 2, "default")
        data.xcoms[(step["id"], -1, "airflow_claude_provenance")] = {
            "plan_id": plan["id"],
            "plan_hash": h,
            "idempotency_key": "ik_" + step["id"],
        }
        if ok:
            data.xcoms[(step["id"], -1, "return_value")] = {"value": step["id"]}
            data.ledger[(step["id"], -1)] = {"result": {"idempotency_key": "ik_" + step["id"], "output": 1}}
        data.dag_tasks[step["id"]] = DagTask(
            upstream=step["depends_on"],
            doc_md=f"### step `{step['id']}`: tool `{step['tool']}` v1 (none)\n\nplan `x`\n\n"
            "**Arguments**\n\n```json\n{}\n```",
        )
    data.tasks[("saga.undo_extract", -1)] = TaskRow("success", 1)
    data.dag_doc = (
        f"### airflow-claude plan\n\n**Goal**\n\n```\n{plan['goal']}\n```\n\n| field | value |\n|---|---|\n"
        f"| plan id | `{plan['id']}` |\n| plan hash | `{h}` |"
    )
    if with_file:
        data.plan_file = plan
    return data
