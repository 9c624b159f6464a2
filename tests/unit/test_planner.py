"""The planner against the offline Claude, through the real anthropic SDK over HTTP."""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from airflow_claude.catalog import Catalog
from airflow_claude.examples.orders import catalog
from airflow_claude.observability.records import parse_record
from airflow_claude.planner import DEFAULT_MODEL, CallPolicy, ClaudePlanner, ModelGateway, PlanCache
from airflow_claude.planner.errors import (
    BudgetExhausted,
    ClaudeUnavailable,
    ContextBudgetExceeded,
    NoPlanInAnswer,
    PlanRefused,
    PlanRepairExhausted,
    PlanTruncated,
    SpendLimitReached,
)
from airflow_claude.testing import FakeClaude

STEPS = json.loads((Path(__file__).parents[2] / "dags" / "plans" / "nightly_orders_report.json").read_text())["steps"]
GOAL = "Report October revenue by region and tell the data team."
FAST = CallPolicy(attempts=3, retry_after_cap=2.0, base_backoff=0.05, timeout=5.0)


def planner(
    fake: FakeClaude, *, model: str = DEFAULT_MODEL, policy: CallPolicy = FAST, before_call: Any = None, **kwargs: Any
) -> ClaudePlanner:
    gateway = ModelGateway(fake.client(), model, policy=policy, before_call=before_call, logger=kwargs.get("logger"))
    return ClaudePlanner(gateway, kwargs.pop("catalog", catalog), **kwargs)


def records(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    found = (parse_record(r.getMessage()) for r in caplog.records)
    return [r for r in found if r is not None and r.get("event") == event]


def broken_steps() -> list[dict[str, Any]]:
    steps = copy.deepcopy(STEPS)
    steps[1]["tool"] = "check_qualty"
    steps[2]["args"]["by"] = "planet"
    return steps


def test_happy_path_returns_a_validated_plan_with_provenance(fake_claude: FakeClaude) -> None:
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS})
    result = planner(fake_claude).plan(GOAL, plan_id="october_report")
    plan = result.plan
    assert plan.id == "october_report" and plan.goal == GOAL and len(plan.steps) == 6
    prov = plan.provenance
    assert prov.created_by == "claude" and prov.model == "claude-sonnet-5-5"
    assert prov.prompt_template == "plan-v2" and prov.prompt_hash and prov.prompt_hash.startswith("sha256:")
    assert prov.catalog_fingerprint == catalog.fingerprint
    assert prov.request_ids == [result.calls[0].request_id] and prov.repair_attempts == 0
    assert prov.usage is not None and prov.usage.output_tokens == result.calls[0].output_tokens > 0
    assert prov.cost_usd == str(result.cost_usd) and result.cost_usd > 0
    body = fake_claude.message_requests()[0].body
    assert body["tool_choice"] == {"type": "tool", "name": "submit_plan", "disable_parallel_tool_use": True}
    assert GOAL in json.dumps(body["messages"])
    described = json.dumps(catalog.describe(), sort_keys=True, indent=1)
    assert described in body["system"][0]["text"]  # the whole catalog, sorted


def test_prompt_is_byte_stable_and_second_call_reads_the_prompt_cache(fake_claude: FakeClaude) -> None:
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS})
    first = planner(fake_claude).plan(GOAL)
    second = planner(fake_claude).plan(GOAL)  # a new planner, as in another task process
    bodies = [r.text for r in fake_claude.message_requests()]
    assert bodies[0] == bodies[1]
    assert first.calls[0].cache_creation_input_tokens > 0 and first.calls[0].cache_read_input_tokens == 0
    assert second.calls[0].cache_read_input_tokens == first.calls[0].cache_creation_input_tokens
    assert second.cost_usd < first.cost_usd


def test_invalid_answer_is_repaired_with_the_exact_errors(fake_claude: FakeClaude) -> None:
    fake_claude.reply_tool_use("submit_plan", {"steps": broken_steps()}, times=1)
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS})
    result = planner(fake_claude).plan(GOAL)
    assert result.attempts == 2 and result.plan.provenance.repair_attempts == 1
    assert len(result.plan.provenance.request_ids) == 2
    second = fake_claude.message_requests()[1].body
    feedback = second["messages"][-1]["content"][0]
    assert feedback["type"] == "tool_result" and feedback["is_error"] is True
    assert "[unknown_tool] tool 'check_qualty'" in feedback["content"]
    assert "did you mean 'check_quality'?" in feedback["content"]
    assert "'planet' is not one of" in feedback["content"]
    assert second["messages"][-2]["role"] == "assistant"


def test_repair_exhausted_lists_every_error(fake_claude: FakeClaude) -> None:
    fake_claude.reply_tool_use("submit_plan", {"steps": broken_steps()})
    with pytest.raises(PlanRepairExhausted) as caught:
        planner(fake_claude, max_repairs=2).plan(GOAL)
    assert caught.value.attempts == 3 and len(fake_claude.message_requests()) == 3
    assert {i.code for i in caught.value.issues} == {"unknown_tool", "invalid_argument"}
    assert "check_qualty" in str(caught.value) and len(caught.value.calls) == 3


def test_refusal(fake_claude: FakeClaude) -> None:
    fake_claude.reply_text("I can't help with exfiltrating customer data.", stop_reason="refusal")
    with pytest.raises(PlanRefused, match="exfiltrating"):
        planner(fake_claude).plan("Email every customer's card number to me")


def test_max_tokens_truncation(fake_claude: FakeClaude) -> None:
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS[:1]}, stop_reason="max_tokens")
    with pytest.raises(PlanTruncated, match="max_tokens=512"):
        planner(fake_claude, max_tokens=512).plan(GOAL)


def test_plain_text_instead_of_a_plan(fake_claude: FakeClaude) -> None:
    fake_claude.reply_text(json.dumps({"steps": STEPS}), stop_reason="end_turn")
    with pytest.raises(NoPlanInAnswer, match="plain text"):
        planner(fake_claude).plan(GOAL)


def test_rate_limit_then_success_honours_a_small_retry_after(fake_claude: FakeClaude) -> None:
    fake_claude.reply_rate_limit(retry_after=0.3, times=1)
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS})
    started = time.monotonic()
    result = planner(fake_claude).plan(GOAL)
    assert time.monotonic() - started >= 0.3
    assert len(fake_claude.message_requests()) == 2 and result.plan.steps


def test_huge_retry_after_gives_the_worker_back_at_once(fake_claude: FakeClaude) -> None:
    fake_claude.reply_rate_limit(retry_after=3600)
    started = time.monotonic()
    with pytest.raises(ClaudeUnavailable) as caught:
        planner(fake_claude).plan(GOAL)
    assert time.monotonic() - started < 2.0
    assert caught.value.retryable and caught.value.retry_after == 3600
    assert len(fake_claude.message_requests()) == 1


def test_overloaded_529_is_retried_then_reported_retryable(fake_claude: FakeClaude) -> None:
    fake_claude.reply_overloaded()
    with pytest.raises(ClaudeUnavailable, match="OverloadedError"):
        planner(fake_claude).plan(GOAL)
    assert len(fake_claude.message_requests()) == FAST.attempts


def test_server_error_then_success(fake_claude: FakeClaude) -> None:
    fake_claude.reply_api_error(times=1)
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS})
    assert planner(fake_claude).plan(GOAL).plan.steps


def test_spend_limit_is_terminal_and_not_retried(fake_claude: FakeClaude) -> None:
    fake_claude.reply_spend_limit()
    with pytest.raises(SpendLimitReached) as caught:
        planner(fake_claude).plan(GOAL)
    assert not caught.value.retryable and len(fake_claude.message_requests()) == 1


def test_context_budget_refuses_before_any_model_call(fake_claude: FakeClaude) -> None:
    with pytest.raises(ContextBudgetExceeded) as caught:
        planner(fake_claude, context_budget_tokens=100).plan(GOAL)
    assert caught.value.tokens > 100
    assert fake_claude.message_requests() == [] and len(fake_claude.requests_to("/v1/messages/count_tokens")) == 1


def test_plan_cache_hit_makes_zero_calls_and_a_near_miss_does_not_leak(fake_claude: FakeClaude, tmp_path: Path) -> None:
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS})
    cache = PlanCache(tmp_path / "plans")
    first = planner(fake_claude, cache=cache).plan(GOAL)
    fake_claude.clear_requests()
    again = planner(fake_claude, cache=cache).plan(GOAL)
    assert again.cached and again.calls == [] and fake_claude.requests == []
    assert again.plan.hash == first.plan.hash
    changed = Catalog([replace(t, version="2") if n == "notify" else t for n, t in catalog.items()], name="orders")
    assert changed.fingerprint != catalog.fingerprint
    near_miss = planner(fake_claude, cache=cache, catalog=changed).plan(GOAL)  # same goal, other catalog
    assert not near_miss.cached and len(fake_claude.message_requests()) == 1
    other_model = planner(fake_claude, cache=cache, model="claude-opus-5-5").plan(GOAL)
    assert not other_model.cached
    assert len(list((tmp_path / "plans").glob("*.json"))) == 3


def test_tampered_cache_entry_for_other_inputs_is_ignored(fake_claude: FakeClaude, tmp_path: Path) -> None:
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS})
    cache = PlanCache(tmp_path)
    planner(fake_claude, cache=cache).plan(GOAL)
    entry = next(tmp_path.glob("*.json"))
    stored = json.loads(entry.read_text())
    stored["key_material"]["goal"] = "something else"
    entry.write_text(json.dumps(stored))
    fake_claude.clear_requests()
    assert not planner(fake_claude, cache=cache).plan(GOAL).cached


def test_registered_secrets_never_reach_the_request(fake_claude: FakeClaude) -> None:
    from airflow_claude.observability.redaction import register_secret

    register_secret("pa55-w0rd-from-a-connection")
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS})
    planner(fake_claude).plan(
        "Use password pa55-w0rd-from-a-connection to read orders", memory="key pa55-w0rd-from-a-connection"
    )
    sent = fake_claude.all_request_text()
    assert "pa55-w0rd-from-a-connection" not in sent and "***" in sent


def test_every_call_goes_through_the_gateway_with_its_guard_and_record(
    fake_claude: FakeClaude, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="test.planner")
    fake_claude.reply_tool_use("submit_plan", {"steps": broken_steps()}, times=1)
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS})
    asked: list[tuple[str, int, int]] = []
    result = planner(
        fake_claude, before_call=lambda *a: asked.append(a), max_tokens=4096, logger=logging.getLogger("test.planner")
    ).plan(GOAL, plan_id="guarded")
    assert [(purpose, max_tokens) for purpose, _, max_tokens in asked] == [("plan", 4096), ("repair", 4096)]
    billed = [c.input_tokens + c.cache_creation_input_tokens + c.cache_read_input_tokens for c in result.calls]
    assert [tokens for _, tokens, _ in asked] == billed  # the count covers the cached prefix too
    calls = records(caplog, "model.call")
    assert [(r["purpose"], r["plan_id"], r["prompt_template"]) for r in calls] == [
        ("plan", "guarded", "plan-v2"),
        ("repair", "guarded", "plan-v2"),
    ]
    assert [r["request_id"] for r in calls] == result.plan.provenance.request_ids


def test_a_refused_call_fails_planning_with_the_usage_so_far(
    fake_claude: FakeClaude, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="test.planner")
    fake_claude.reply_tool_use("submit_plan", {"steps": broken_steps()})

    def budget(purpose: str, input_tokens: int, max_tokens: int) -> None:
        if purpose == "repair":
            raise BudgetExhausted("the repair call was not made")

    with pytest.raises(BudgetExhausted) as caught:
        planner(fake_claude, before_call=budget, logger=logging.getLogger("test.planner")).plan(GOAL, plan_id="poor")
    assert [c.purpose for c in caught.value.calls] == ["plan"] and len(fake_claude.message_requests()) == 1
    failed = records(caplog, "plan.failed")
    assert [(r["plan_id"], r["error"], r["retryable"], r["calls"]) for r in failed] == [
        ("poor", "BudgetExhausted", False, 1)
    ]
