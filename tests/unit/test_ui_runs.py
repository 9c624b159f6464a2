"""The plugin's read side on plain run data: summaries, rounds, steps, version chain, cost, compiled plans."""

from __future__ import annotations

from decimal import Decimal

from ui_kit import HOSTILE, automation_run, compiled_run, plan_doc, plan_hash

from airflow_claude.runtime.replay import REPLAY_CONF_KEY
from airflow_claude.ui.page import run_page
from airflow_claude.ui.runs import (
    PreviousVersion,
    RunData,
    TaskRow,
    automation_prefix,
    build_detail,
    build_summary,
    rebuilt_plan,
    shown,
)


def test_an_automation_run_in_a_task_group_shows_every_round_and_the_report() -> None:
    detail = build_detail(automation_run())
    assert detail.kind == "automation" and detail.verdict == "done" and detail.status == "succeeded"
    assert detail.model_calls == 4 and Decimal(detail.cost_usd) == Decimal("0.04")
    assert detail.approver == "ann" and detail.plan_id == "orders_v2"
    assert detail.plan_hash == plan_hash(plan_doc("orders_v2", parent="orders_v1")) and detail.plan_exact
    assert [r.round for r in detail.rounds] == [1, 2]  # round 3 never planned: not shown
    first = {s.id: s for s in detail.rounds[0].steps}
    assert first["notify"].state == "failed" and first["notify"].attempts == 3
    assert first["notify"].ledger == "started" and first["notify"].output_summary == "ValueError: channel missing"
    assert first["extract"].ledger == "result" and first["extract"].idempotency_key == "ik_1_extract"
    assert (first["extract"].task_id, first["extract"].map_index) == ("claude.attempt_1.steps", 0)
    assert first["summarise"].depends_on == ["extract"]
    assert detail.compensation == {"undone": ["round 1: extract"], "not_undone": []}


def test_the_version_chain_names_the_parent_the_editor_and_the_reviews_reason() -> None:
    chain = build_detail(automation_run()).version_chain
    assert [v.plan_id for v in chain] == ["orders_v1", "orders_v2"]
    assert chain[0].auto_approved and chain[0].replan_reason is None
    assert chain[1].parent_plan_id == "orders_v1" and chain[1].edited and chain[1].approved_by == "ann"
    assert chain[1].replan_reason == "notify failed: channel missing"


def test_the_version_chain_says_what_a_replan_and_an_edit_changed() -> None:
    data = automation_run()
    proposal = data.xcoms[("claude.attempt_2.plan", -1, "return_value")]["plan"]
    proposal["steps"][2]["args"]["text"] = "done, with regions"  # Claude's re-plan changed a step
    committed = data.xcoms[("claude.attempt_2.commit", -1, "committed")]
    edited_step = {**proposal["steps"][2], "args": {"text": HOSTILE}}  # ann's edit, hostile text and all
    committed["plan"] = {**proposal, "steps": [*proposal["steps"][:2], edited_step]}
    chain = build_detail(data).version_chain
    assert chain[0].changes == [] and chain[0].edits == [] and chain[0].changed_since is None
    assert chain[1].changed_since == chain[0].plan_hash
    assert chain[1].changes == ['changed step notify: args.text: "done" -> "done, with regions"']
    assert chain[1].edits == [f'changed step notify: args.text: "done, with regions" -> "{HOSTILE}"']
    page = run_page(build_detail(data), "")
    assert 'class="edit">edit: <code>changed step notify: args.text:' in page and HOSTILE not in page


def test_a_compiled_run_says_what_changed_since_its_dags_previous_plan() -> None:
    data = compiled_run()
    before = rebuilt_plan(data, "nightly_orders")
    before["steps"] = [s for s in before["steps"] if s["id"] != "notify"]  # version 3 had no notify step
    data.previous_version = PreviousVersion(plan_hash="sha256:" + "e" * 64, dag_version=3, plan=before)
    entry = build_detail(data).version_chain[0]
    assert entry.changed_since == "sha256:" + "e" * 64
    assert entry.changes == ["added step notify (notify)"]
    page = run_page(build_detail(data), "")
    assert 'class="change">since sha256:eeeeeeeeeeee: <code>added step notify (notify)</code>' in page
    assert build_detail(compiled_run()).version_chain[0].changes == []


def test_a_run_still_in_progress_sums_what_the_model_tasks_pushed() -> None:
    summary = build_summary(automation_run(with_report=False))
    assert summary.status is None and summary.verdict == "done"  # the last review's verdict
    assert summary.model_calls == 4 and Decimal(summary.cost_usd) == Decimal("0.04")
    assert summary.goal == "Report revenue"


def test_a_whole_dag_automation_has_an_empty_prefix() -> None:
    data = automation_run(prefix="")
    assert automation_prefix(data) == ""
    assert build_detail(data).rounds[1].steps[0].task_id == "attempt_2.steps"


def test_a_replay_run_says_which_run_and_plan_it_replays() -> None:
    data = automation_run(with_report=False)
    request = {"plan": {}, "plan_hash": "sha256:x", "source": {"dag_id": "d", "run_id": "r"}, "requested_by": "ann"}
    data.conf = {REPLAY_CONF_KEY: request}
    assert build_detail(data).replay_of == {
        "plan_hash": "sha256:x",
        "source": {"dag_id": "d", "run_id": "r"},
        "requested_by": "ann",
    }


def test_a_queued_replay_run_shows_the_stored_plans_goal() -> None:
    data = RunData(dag_id="d", run_id="replay__1", state="queued")
    data.tasks[("attempt_1.plan", -1)] = TaskRow("scheduled", 0)
    data.conf = {REPLAY_CONF_KEY: {"plan": plan_doc("p", "Stored goal"), "plan_hash": "sha256:x"}}
    summary = build_summary(data)
    assert summary.kind == "automation" and summary.goal == "Stored goal" and summary.model_calls == 0


def test_a_compiled_plan_run_with_its_plan_file_is_exact() -> None:
    data = compiled_run()
    detail = build_detail(data)
    assert detail.kind == "plan" and detail.plan_exact and detail.plan == data.plan_file
    assert detail.model_calls == 0 and detail.status == "failed" and detail.plan_id == "nightly_orders"
    steps = {s.id: s for s in detail.rounds[0].steps}
    assert steps["notify"].state == "failed" and steps["notify"].attempts == 2 and steps["notify"].ledger == "none"
    assert steps["extract"].output_summary == '{"value": "extract"}' and steps["extract"].ledger == "result"
    assert detail.compensation == {"undone": ["extract"], "not_undone": []}


def test_a_compiled_plan_replay_run_says_which_run_it_replays() -> None:
    data = compiled_run()
    source = {"dag_id": "nightly_orders", "run_id": "scheduled__2026-12-03"}
    h = build_detail(data).plan_hash
    data.conf = {"day": "x", REPLAY_CONF_KEY: {"plan_hash": h, "source": source, "requested_by": "admin"}}
    assert build_detail(data).replay_of == {"plan_hash": h, "source": source, "requested_by": "admin"}
    assert build_detail(compiled_run()).replay_of is None


def test_without_its_file_a_compiled_plan_is_rebuilt_from_the_dag_and_marked_inexact() -> None:
    detail = build_detail(compiled_run(with_file=False))
    assert not detail.plan_exact and detail.plan is not None
    assert detail.plan["goal"] == "Nightly orders"
    assert [(s["id"], s["tool"], s["depends_on"]) for s in detail.plan["steps"]] == [
        ("extract", "query", []),
        ("summarise", "summarise", ["extract"]),
        ("notify", "notify", ["summarise"]),
    ]
    assert detail.plan_hash == plan_hash(plan_doc("nightly_orders", "Nightly orders"))  # from the steps' stamps


def test_shown_text_is_truncated_and_keeps_hostile_text_as_data() -> None:
    assert shown("x" * 5000, 100) == "x" * 99 + "…"
    assert shown({"a": HOSTILE}) == '{"a": "<script>alert(1)</script>"}'  # escaping is the page's job
    assert shown(None) is None
