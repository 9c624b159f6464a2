"""The model gateway against the offline Claude, through the real anthropic SDK over HTTP.

One path to Claude: connection -> client and model, token count, the budget guard, the call with
its retry rules, usage and cost, and one ``model.call`` record per call.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_claude.observability.records import parse_record
from airflow_claude.planner import CallPolicy, ModelGateway, PriceTable
from airflow_claude.planner.errors import (
    BudgetExhausted,
    ClaudeRequestRejected,
    ClaudeUnavailable,
    ContextBudgetExceeded,
    SpendLimitReached,
)
from airflow_claude.testing import FakeClaude
from airflow_claude.testing.fake_claude import COUNT_TOKENS_PATH

MODEL = "claude-sonnet-5-5"
FAST = CallPolicy(attempts=3, retry_after_cap=2.0, base_backoff=0.05, timeout=5.0)
PACKAGE = Path(__file__).parents[2] / "airflow_claude"


def request(text: str = "Say hi.", max_tokens: int = 256) -> dict[str, Any]:
    return {
        "max_tokens": max_tokens,
        "system": [{"type": "text", "text": "You answer briefly."}],
        "tools": [{"name": "answer", "description": "Answer.", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "answer"},
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
    }


def records(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    found = [parse_record(r.getMessage()) for r in caplog.records]
    return [r for r in found if r is not None and r.get("event") == event]


@pytest.fixture
def logger(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    caplog.set_level(logging.INFO, logger="test.gateway")
    return logging.getLogger("test.gateway")


def test_a_call_is_priced_and_recorded_once(fake_claude: FakeClaude, caplog: Any, logger: logging.Logger) -> None:
    fake_claude.reply_tool_use("answer", {"text": "hi"})
    gateway = ModelGateway(fake_claude.client(), MODEL, policy=FAST, logger=logger)
    message, usage = gateway.call("review", request(), prompt_template="review-v2", dag_id="d", run_id="r", plan_id="p")
    assert message.content[0].input == {"text": "hi"}
    assert (usage.purpose, usage.model) == ("review", MODEL)
    assert usage.request_id and usage.request_id.startswith("req_fake_")
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.cost_usd == PriceTable().cost(MODEL, message.usage) > 0
    (record,) = records(caplog, "model.call")
    assert {k: record[k] for k in ("dag_id", "run_id", "plan_id", "prompt_template", "stop_reason")} == {
        "dag_id": "d",
        "run_id": "r",
        "plan_id": "p",
        "prompt_template": "review-v2",
        "stop_reason": "tool_use",
    }
    assert record["duration_s"] >= 0 and {k: v for k, v in record.items() if k in usage.to_dict()} == usage.to_dict()
    assert fake_claude.last_body["model"] == MODEL  # the gateway's model, unless the request names one
    assert fake_claude.requests_to(COUNT_TOKENS_PATH) == []  # nobody reads a count: none is asked for


def test_before_call_sees_the_counted_input_and_may_refuse_the_call(fake_claude: FakeClaude) -> None:
    fake_claude.reply_tool_use("answer", {"text": "hi"})
    asked: list[tuple[str, int, int]] = []
    gateway = ModelGateway(fake_claude.client(), MODEL, policy=FAST, before_call=lambda *a: asked.append(a))
    counted = gateway.count_tokens(request())
    _, usage = gateway.call("plan", request(max_tokens=300), prompt_template="plan-v2")
    assert asked == [("plan", counted, 300)] and counted == usage.input_tokens > 0

    def refuse(purpose: str, input_tokens: int, max_tokens: int) -> None:
        raise BudgetExhausted(f"the {purpose} call was not made")

    fake_claude.clear_requests()
    with pytest.raises(BudgetExhausted, match="the review call was not made"):
        ModelGateway(fake_claude.client(), MODEL, before_call=refuse).call("review", request(), prompt_template="x")
    assert [r.path for r in fake_claude.requests] == [COUNT_TOKENS_PATH]  # counted, never sent


def test_max_input_tokens_refuses_an_oversized_prompt_before_any_call(fake_claude: FakeClaude) -> None:
    with pytest.raises(ContextBudgetExceeded) as caught:
        ModelGateway(fake_claude.client(), MODEL).call(
            "plan", request("x" * 4000), prompt_template="p", max_input_tokens=50
        )
    assert caught.value.tokens > 50 and not caught.value.retryable
    assert fake_claude.message_requests() == []


def test_sdk_retries_are_off_and_ours_are_bounded(fake_claude: FakeClaude) -> None:
    """A client built to retry 5 times still makes exactly ``policy.attempts`` requests."""
    fake_claude.reply_overloaded()
    gateway = ModelGateway(fake_claude.client(max_retries=5), MODEL, policy=FAST)
    with pytest.raises(ClaudeUnavailable, match="OverloadedError") as caught:
        gateway.call("plan", request(), prompt_template="p")
    assert caught.value.retryable and len(fake_claude.message_requests()) == FAST.attempts


def test_an_overloaded_count_is_retried_then_unavailable_and_the_message_is_never_sent(
    fake_claude: FakeClaude,
) -> None:
    fake_claude.reply_overloaded(match={"path": COUNT_TOKENS_PATH})
    gateway = ModelGateway(fake_claude.client(), MODEL, policy=FAST, before_call=lambda *a: None)
    with pytest.raises(ClaudeUnavailable, match="OverloadedError"):
        gateway.call("plan", request(), prompt_template="p")
    counts = fake_claude.requests_to(COUNT_TOKENS_PATH)
    assert len(counts) == FAST.attempts and {r.status for r in counts} == {529}
    assert fake_claude.message_requests() == []


def test_a_short_retry_after_is_honoured_in_process(fake_claude: FakeClaude) -> None:
    fake_claude.reply_rate_limit(retry_after=0.3, times=1)
    fake_claude.reply_tool_use("answer", {"text": "hi"})
    started = time.monotonic()
    ModelGateway(fake_claude.client(), MODEL, policy=FAST).call("plan", request(), prompt_template="p")
    assert time.monotonic() - started >= 0.3 and len(fake_claude.message_requests()) == 2


def test_a_long_retry_after_gives_the_worker_back_at_once(fake_claude: FakeClaude) -> None:
    fake_claude.reply_rate_limit(retry_after=3600)
    started = time.monotonic()
    with pytest.raises(ClaudeUnavailable) as caught:
        ModelGateway(fake_claude.client(), MODEL, policy=FAST).call("plan", request(), prompt_template="p")
    assert time.monotonic() - started < 2.0 and caught.value.retry_after == 3600
    assert len(fake_claude.message_requests()) == 1


def test_a_dropped_connection_and_a_timeout_are_retryable(fake_claude: FakeClaude) -> None:
    fake_claude.add_rule(respond={"disconnect": True}, times=1)
    fake_claude.reply_tool_use("answer", {"text": "hi"}, times=1)
    gateway = ModelGateway(fake_claude.client(), MODEL, policy=FAST)
    gateway.call("plan", request(), prompt_template="p")
    assert len(fake_claude.message_requests()) == 2
    fake_claude.reset()
    fake_claude.reply_tool_use("answer", {"text": "late"}, delay=1.0)
    slow = ModelGateway(fake_claude.client(), MODEL, policy=CallPolicy(attempts=2, base_backoff=0.05, timeout=0.2))
    with pytest.raises(ClaudeUnavailable, match="APITimeoutError"):
        slow.call("plan", request(), prompt_template="p")


def test_the_spend_limit_is_terminal_and_asked_once(fake_claude: FakeClaude) -> None:
    fake_claude.reply_spend_limit(match={"path": COUNT_TOKENS_PATH})
    gateway = ModelGateway(fake_claude.client(), MODEL, policy=FAST, before_call=lambda *a: None)
    with pytest.raises(SpendLimitReached) as caught:
        gateway.call("plan", request(), prompt_template="p")
    assert not caught.value.retryable
    assert [(r.path, r.status) for r in fake_claude.requests] == [(COUNT_TOKENS_PATH, 429)]


def test_a_rejected_request_is_terminal(fake_claude: FakeClaude) -> None:
    locked = FakeClaude(api_key="the-right-key").start()
    try:
        gateway = ModelGateway(locked.client(api_key="a-wrong-key"), MODEL, policy=FAST)
        with pytest.raises(ClaudeRequestRejected, match="401") as caught:
            gateway.call("plan", request(), prompt_template="p")
        assert not caught.value.retryable and len(locked.message_requests()) == 1
    finally:
        locked.stop()


def test_from_connection_reads_key_base_url_and_model_through_the_hook(
    fake_claude: FakeClaude, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk-ant-gateway-conn-4c1d9e"
    conn = {"conn_type": "anthropic", "host": fake_claude.url, "password": key, "extra": {"model": "claude-haiku-5"}}
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_GATEWAY_TEST", json.dumps(conn))
    fake_claude.reply_tool_use("answer", {"text": "hi"})
    gateway = ModelGateway.from_connection("anthropic_gateway_test", policy=FAST)
    assert gateway.model == "claude-haiku-5" and gateway.policy == FAST
    _, usage = gateway.call("plan", request(), prompt_template="p")
    sent = fake_claude.message_requests()[0]
    assert sent.headers.get("authorization") == f"Bearer {key}" or sent.headers.get("x-api-key") == key
    assert sent.body["model"] == usage.model == "claude-haiku-5"
    assert ModelGateway.from_connection("anthropic_gateway_test", "claude-opus-5").model == "claude-opus-5"
    from airflow_claude.observability.redaction import redact_value

    assert redact_value(f"goal with {key}") == "goal with ***"  # the hook registered the key with the masker


def test_the_gateway_is_the_only_path_to_claude() -> None:
    """No other module of the package builds a client or sends a request by itself (test helpers aside)."""
    needles = ("AnthropicHook", ".messages.create(", ".messages.count_tokens(", "anthropic.Anthropic(", "with_retries")
    allowed = {
        "planner/gateway.py": set(needles),
        "planner/calls.py": {"with_retries"},
        "cli.py": {"anthropic.Anthropic("},  # the CLI's key and replay clients, wrapped in a gateway at once
    }
    found = {
        (name, needle)
        for path in PACKAGE.rglob("*.py")
        if not (name := str(path.relative_to(PACKAGE))).startswith("testing/")
        for needle in needles
        if needle in path.read_text() and needle not in allowed.get(name, set())
    }
    assert found == set()
