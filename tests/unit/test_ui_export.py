"""Export: the cassette answers the run's model calls in order; the bundle carries plan, hash and report."""

from __future__ import annotations

from ui_kit import automation_run, compiled_run, plan_doc, plan_hash

from airflow_claude.testing import FakeClaude
from airflow_claude.testing.fake_claude import load_rules
from airflow_claude.ui.export import EXPORT_FORMAT, cassette, export_bundle
from airflow_claude.ui.runs import build_detail
from airflow_claude.ui.trigger import automation_id_of, plan_with_hash


def _ask(client: object, tool: str) -> dict:
    message = client.messages.create(  # type: ignore[attr-defined]
        model="m",
        max_tokens=100,
        messages=[{"role": "user", "content": "x"}],
        tools=[{"name": tool, "input_schema": {"type": "object"}}],
        tool_choice={"type": "tool", "name": tool},
    )
    return next(b for b in message.content if b.type == "tool_use").input


def test_the_cassette_replays_each_round_plan_then_review_offline() -> None:
    script = cassette(automation_run())
    rules = load_rules(script)
    assert [r.match["tool_name"] for r in rules] == ["submit_plan", "submit_review"] * 2
    with FakeClaude(rules) as offline:
        client = offline.client()
        first = _ask(client, "submit_plan")
        assert _ask(client, "submit_review")["verdict"] == "replan"
        second = _ask(client, "submit_plan")
        assert _ask(client, "submit_review") == {"verdict": "done", "reason": "all good", "summary": "s"}
    expected = [s["id"] for s in plan_doc("orders_v1")["steps"]]
    assert [s["id"] for s in first["steps"]] == [s["id"] for s in second["steps"]] == expected


def test_a_round_without_a_model_call_gets_no_rule() -> None:
    data = automation_run()
    data.xcoms[("claude.attempt_1.plan", -1, "return_value")]["cached"] = True  # the plan cache answered
    data.xcoms[("claude.attempt_2.review", -1, "usage")] = {"calls": 0, "per_call": []}
    tools = [r["match"]["tool_name"] for r in cassette(data)["rules"]]
    assert tools == ["submit_review", "submit_plan"]
    assert cassette(compiled_run()) == {"rules": []}


def test_the_bundle_holds_the_final_plan_its_hash_and_the_report() -> None:
    data = automation_run()
    bundle = export_bundle(data, build_detail(data))
    assert bundle["format"] == EXPORT_FORMAT and bundle["source"] == {"dag_id": data.dag_id, "run_id": data.run_id}
    assert bundle["plan_hash"] == plan_hash(bundle["plan"]) and bundle["plan"]["id"] == "orders_v2"
    assert bundle["report"]["verdict"] == "done" and bundle["plan_exact"]
    calls = build_detail(data).calls
    assert bundle["calls"] == [c.model_dump(mode="json") for c in calls] and len(calls) >= 2
    assert {c["purpose"] for c in bundle["calls"]} >= {"plan", "review"}
    assert all(c["request_id"] for c in bundle["calls"])
    plan = compiled_run()
    assert export_bundle(plan, build_detail(plan))["report"] is None


def test_a_replay_finds_the_plan_by_hash_in_any_round() -> None:
    data = automation_run()
    first = plan_doc("orders_v1")
    assert plan_with_hash(data, plan_hash(first)) == first
    assert plan_with_hash(data, "sha256:nope") is None
    compiled = compiled_run()
    assert plan_with_hash(compiled, plan_hash(compiled.plan_file or {})) == compiled.plan_file
    assert automation_id_of("orders_pipeline", "claude.") == "orders_pipeline.claude"
    assert automation_id_of("orders", "") == "orders"
