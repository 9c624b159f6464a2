"""The offline Claude, exercised only through the real ``anthropic`` SDK over HTTP."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import jsonschema
import pydantic
import pytest

import airflow_claude.testing
from airflow_claude.testing.fake_claude import (
    CassetteRecorder,
    FakeClaude,
    RemoteFakeClaude,
    Rule,
    canonical_json,
    input_tokens,
    offered_tool,
)
from airflow_claude.testing.fake_claude.__main__ import main as cli_main
from airflow_claude.testing.fake_claude._tokens import PromptCache, prompt_segments

MODEL = "claude-fake-model"
ClientFactory = Callable[..., anthropic.Anthropic]


def ask(client: anthropic.Anthropic, text: str = "hello", **kwargs: Any) -> anthropic.types.Message:
    return client.messages.create(model=MODEL, max_tokens=256, messages=[{"role": "user", "content": text}], **kwargs)


PLAN_TOOL: Any = {
    "name": "submit_plan",
    "description": "Submit the plan.",
    "input_schema": {
        "type": "object",
        "properties": {"steps": {"type": "array", "items": {"type": "string"}}},
        "required": ["steps"],
    },
}


# -- replies ------------------------------------------------------------------------------


def test_text_reply_has_the_api_shape(fake_claude: FakeClaude, fake_claude_client: ClientFactory) -> None:
    fake_claude.reply_text("Hi, I'm a fake Claude.")
    message = ask(fake_claude_client())

    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "Hi, I'm a fake Claude."  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.model == MODEL
    assert message.id.startswith("msg_")
    assert message._request_id and message._request_id.startswith("req_")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_read_input_tokens == 0
    (recorded,) = fake_claude.message_requests()
    assert recorded.method == "POST" and recorded.body["messages"][0]["content"] == "hello"
    assert recorded.headers["authorization"] == "Bearer test-key"


def test_forced_tool_use_reply(fake_claude: FakeClaude, fake_claude_client: ClientFactory) -> None:
    fake_claude.reply_tool_use("submit_plan", {"steps": ["a", "b"]}, match={"tool_name": "submit_plan"})
    message = ask(fake_claude_client(), tools=[PLAN_TOOL], tool_choice={"type": "tool", "name": "submit_plan"})

    (block,) = message.content
    assert block.type == "tool_use"
    assert block.name == "submit_plan" and block.input == {"steps": ["a", "b"]}
    assert block.id.startswith("toolu_")
    assert message.stop_reason == "tool_use"
    assert fake_claude.last_body["tool_choice"] == {"type": "tool", "name": "submit_plan"}

    # The same rule does not fire when that tool is neither forced nor offered.
    with pytest.raises(anthropic.InternalServerError, match="no script rule matched"):
        ask(fake_claude_client())


def test_structured_output_via_output_config(fake_claude: FakeClaude, fake_claude_client: ClientFactory) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "score": {"type": "integer"}},
        "required": ["name", "score"],
        "additionalProperties": False,
    }
    fake_claude.reply_json({"name": "ok", "score": 7})
    message = ask(fake_claude_client(), output_config={"format": {"type": "json_schema", "schema": schema}})

    (block,) = message.content
    assert block.type == "text"
    data = json.loads(block.text)
    jsonschema.validate(data, schema)
    assert data == {"name": "ok", "score": 7}
    assert fake_claude.last_body["output_config"]["format"]["schema"] == schema

    class Verdict(pydantic.BaseModel):
        name: str
        score: int

    parsed = fake_claude_client().messages.parse(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "rate"}], output_format=Verdict
    )
    assert parsed.parsed_output == Verdict(name="ok", score=7)


def test_stop_reasons(fake_claude: FakeClaude, fake_claude_client: ClientFactory) -> None:
    fake_claude.reply_text("trunc", stop_reason="max_tokens", match={"contains": "long"})
    fake_claude.reply_text("no", stop_reason="refusal", match={"contains": "bad"})
    fake_claude.reply_text("ab", stop_reason="stop_sequence", match={"contains": "seq"})
    client = fake_claude_client()

    truncated = client.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "long"}])
    assert truncated.stop_reason == "max_tokens" and truncated.usage.output_tokens == 5
    refused = ask(client, "bad")
    assert refused.stop_reason == "refusal" and refused.stop_details is not None
    stopped = ask(client, "seq", stop_sequences=["END"])
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "END"


def test_streaming_reply_accumulates(fake_claude: FakeClaude, fake_claude_client: ClientFactory) -> None:
    fake_claude.add_rule(
        respond={"text": "thinking...", "tool_use": {"name": "submit_plan", "input": {"steps": ["x"]}}}
    )
    with fake_claude_client().messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "go"}], tools=[PLAN_TOOL]
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].input == {"steps": ["x"]}  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"
    assert final.usage.input_tokens == input_tokens(fake_claude.last_body)


# -- tokens and caching -------------------------------------------------------------------


def test_count_tokens_matches_usage_and_documented_formula(
    fake_claude: FakeClaude, fake_claude_client: ClientFactory
) -> None:
    fake_claude.reply_text("ok")
    client = fake_claude_client()
    kwargs: dict[str, Any] = {"system": "Be terse.", "tools": [PLAN_TOOL]}
    message = ask(client, "count me", **kwargs)
    counted = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "count me"}], **kwargs)

    expected = (
        math.ceil(len(canonical_json(PLAN_TOOL)) / 4)
        + math.ceil(len(canonical_json({"type": "text", "text": "Be terse."})) / 4)
        + math.ceil(len(canonical_json({"role": "user", "content": {"type": "text", "text": "count me"}})) / 4)
    )
    assert counted.input_tokens == message.usage.input_tokens == expected
    assert len(fake_claude.requests_to("/v1/messages/count_tokens")) == 1


def test_prompt_caching_creates_then_reads(fake_claude: FakeClaude, fake_claude_client: ClientFactory) -> None:
    fake_claude.reply_text("ok")
    client = fake_claude_client()
    system: list[Any] = [
        {"type": "text", "text": "A long stable system prompt. " * 20, "cache_control": {"type": "ephemeral"}}
    ]
    prefix = input_tokens({"tools": [PLAN_TOOL], "system": system, "messages": []})

    first = ask(client, "q1", system=system, tools=[PLAN_TOOL])
    second = ask(client, "a different question", system=system, tools=[PLAN_TOOL])
    total_second = client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "a different question"}], system=system, tools=[PLAN_TOOL]
    ).input_tokens

    assert first.usage.cache_creation_input_tokens == prefix > 0
    assert first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == prefix
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == total_second - prefix  # only the uncached remainder
    assert first.usage.cache_creation is not None and first.usage.cache_creation.ephemeral_5m_input_tokens == prefix

    changed = [{**system[0], "text": "Another system prompt."}]
    third = ask(client, "q1", system=changed, tools=[PLAN_TOOL])
    assert third.usage.cache_read_input_tokens == 0 and (third.usage.cache_creation_input_tokens or 0) > 0

    no_marker = ask(client, "q1", system="plain", tools=[PLAN_TOOL])
    assert no_marker.usage.cache_creation_input_tokens == no_marker.usage.cache_read_input_tokens == 0


def test_prompt_cache_reads_longest_seen_breakpoint() -> None:
    cache = PromptCache()
    tool = {**PLAN_TOOL, "cache_control": {"type": "ephemeral", "ttl": "1h"}}

    def body(question: str) -> dict[str, Any]:
        block = {"type": "text", "text": question, "cache_control": {"type": "ephemeral"}}
        return {
            "tools": [tool],
            "messages": [{"role": "user", "content": [block]}, {"role": "user", "content": "tail"}],
        }

    tool_tokens = input_tokens({"tools": [PLAN_TOOL], "messages": []})
    first = cache.account(MODEL, prompt_segments(body("q1")))
    second = cache.account(MODEL, prompt_segments(body("another question")))
    other_model = cache.account("claude-other", prompt_segments(body("q1")))
    tail = input_tokens({"messages": [{"role": "user", "content": "tail"}]})

    assert first.cache_read_input_tokens == 0 and first.ephemeral_1h_input_tokens == tool_tokens
    assert first.cache_creation_input_tokens + first.input_tokens == input_tokens(body("q1"))
    assert first.input_tokens == tail  # everything after the last breakpoint
    assert second.cache_read_input_tokens == tool_tokens  # tools prefix reused, question re-written
    assert second.cache_creation_input_tokens == input_tokens(body("another question")) - tool_tokens - tail
    assert other_model.cache_read_input_tokens == 0  # caches are per model


# -- errors -------------------------------------------------------------------------------


def test_rate_limit_then_success_is_retried_by_sdk(fake_claude: FakeClaude, fake_claude_client: ClientFactory) -> None:
    fake_claude.reply_rate_limit(retry_after=0.8, times=1)
    fake_claude.reply_text("after the wait")
    started = time.monotonic()
    message = ask(fake_claude_client(max_retries=2))

    assert message.content[0].text == "after the wait"  # type: ignore[union-attr]
    first, second = fake_claude.message_requests()
    assert (first.status, second.status) == (429, 200)
    assert second.headers["x-stainless-retry-count"] == "1"
    # The SDK waited for retry-after, not its own first backoff (at most 0.5 s).
    assert second.time - first.time >= 0.75
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("scripted", "exc_class", "status", "error_type"),
    [
        ("reply_overloaded", anthropic.OverloadedError, 529, "overloaded_error"),
        ("reply_api_error", anthropic.InternalServerError, 500, "api_error"),
    ],
)
def test_server_errors_raise_sdk_exceptions(
    fake_claude: FakeClaude,
    fake_claude_client: ClientFactory,
    scripted: str,
    exc_class: type[anthropic.APIStatusError],
    status: int,
    error_type: str,
) -> None:
    getattr(fake_claude, scripted)()
    with pytest.raises(exc_class) as info:
        ask(fake_claude_client(max_retries=0))
    assert info.value.status_code == status
    assert info.value.type == error_type
    assert info.value.request_id and info.value.request_id.startswith("req_")
    assert isinstance(info.value.body, dict) and info.value.body["type"] == "error"
    assert len(fake_claude.message_requests()) == 1


def test_spend_limit_raises_specific_exception(fake_claude: FakeClaude, fake_claude_client: ClientFactory) -> None:
    fake_claude.reply_spend_limit()
    with pytest.raises(anthropic.EnforcedSpendLimitReachedError) as info:
        ask(fake_claude_client(max_retries=0))
    assert isinstance(info.value, anthropic.RateLimitError)
    assert info.value.status_code == 429
    assert info.value.error_code == "enforced_spend_limit_reached"
    assert "retry-after" not in info.value.response.headers


def test_generic_error_with_headers_from_script(fake_claude: FakeClaude, fake_claude_client: ClientFactory) -> None:
    fake_claude.reply_error(400, message="bad field", headers={"x-extra": "1"})
    with pytest.raises(anthropic.BadRequestError, match="bad field") as info:
        ask(fake_claude_client())
    assert info.value.type == "invalid_request_error"
    assert info.value.response.headers["x-extra"] == "1"


def test_delay_beyond_client_timeout(fake_claude: FakeClaude, fake_claude_client: ClientFactory) -> None:
    fake_claude.reply_text("too late", delay=3)
    started = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        ask(fake_claude_client(max_retries=0, timeout=0.3))
    assert time.monotonic() - started < 2


def test_dropped_connection(fake_claude: FakeClaude, fake_claude_client: ClientFactory) -> None:
    fake_claude.add_rule(respond={"disconnect": True})
    with pytest.raises(anthropic.APIConnectionError) as info:
        ask(fake_claude_client(max_retries=0))
    assert not isinstance(info.value, anthropic.APITimeoutError)


def test_unmatched_request_fails_loudly_without_retries(
    fake_claude: FakeClaude, fake_claude_client: ClientFactory
) -> None:
    fake_claude.reply_text("never", match={"contains": "magic word"})
    with pytest.raises(anthropic.InternalServerError) as info:
        ask(fake_claude_client(max_retries=2), "something else")
    message = str(info.value)
    assert "no script rule matched" in message and "something else" in message and "magic word" in message
    assert len(fake_claude.message_requests()) == 1  # x-should-retry: false stopped the SDK retrying


def test_required_api_key(fake_claude_client: ClientFactory) -> None:
    with FakeClaude(api_key="right") as server:
        server.reply_text("in")
        with pytest.raises(anthropic.AuthenticationError):
            ask(server.client(api_key="wrong"))
        assert ask(server.client(api_key="right")).content[0].text == "in"  # type: ignore[union-attr]


# -- scripting ----------------------------------------------------------------------------


def test_times_exhaustion_and_order(fake_claude: FakeClaude, fake_claude_client: ClientFactory) -> None:
    once = fake_claude.reply_text("first", times=1)
    twice = fake_claude.reply_text("second", times=2)
    client = fake_claude_client()

    texts = [ask(client).content[0].text for _ in range(3)]  # type: ignore[union-attr]
    assert texts == ["first", "second", "second"]
    assert (once.used, twice.used) == (1, 2) and once.exhausted and twice.exhausted
    assert fake_claude.unused_rules() == []
    with pytest.raises(anthropic.InternalServerError, match="no script rule matched"):
        ask(client)


def test_match_on_call_index_contains_and_model(fake_claude: FakeClaude, fake_claude_client: ClientFactory) -> None:
    fake_claude.reply_text("zero", match={"call_index": 0})
    fake_claude.reply_text("mentions cats", match={"contains": ["cat", "dog"]})
    fake_claude.reply_text("other model", match={"model": "claude-other"})
    fake_claude.reply_text("fallback")
    client = fake_claude_client()

    assert ask(client, "cat and dog").content[0].text == "zero"  # type: ignore[union-attr]
    assert ask(client, "cat and dog").content[0].text == "mentions cats"  # type: ignore[union-attr]
    assert ask(client, "cat only").content[0].text == "fallback"  # type: ignore[union-attr]
    other = client.messages.create(model="claude-other", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert other.content[0].text == "other model"  # type: ignore[union-attr]


def test_json_script_file(tmp_path: Path, fake_claude: FakeClaude, fake_claude_client: ClientFactory) -> None:
    script = {
        "rules": [
            {"match": {"call_index": 0}, "respond": {"error": {"status": 529}}},
            {
                "match": {"tool_name": "submit_plan"},
                "respond": {"tool_use": {"name": "submit_plan", "input": {"steps": ["s1"]}}},
                "times": 1,
            },
            {"respond": {"text": "done", "usage": {"output_tokens": 42}}},
        ]
    }
    path = tmp_path / "script.json"
    path.write_text(json.dumps(script))
    assert len(fake_claude.load_script(path)) == 3
    client = fake_claude_client()

    with pytest.raises(anthropic.OverloadedError):
        ask(client)
    tool_reply = ask(client, tools=[PLAN_TOOL], tool_choice={"type": "tool", "name": "submit_plan"})
    assert tool_reply.content[0].input == {"steps": ["s1"]}  # type: ignore[union-attr]
    final = ask(client, tools=[PLAN_TOOL])
    assert final.content[0].text == "done" and final.usage.output_tokens == 42  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "bad",
    [
        {"respond": {"txt": "typo"}},
        {"match": {"tool": "x"}, "respond": {"text": "t"}},
        {"respond": {"text": "a", "json": {}}},
        {"respond": {"error": {"status": 500, "kind": "x"}}},
        {"when": {}, "respond": {"text": "t"}},
    ],
)
def test_script_typos_fail_at_load(fake_claude: FakeClaude, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"unknown|respond"):
        fake_claude.load_script([bad])


def test_callable_responder_computes_from_offered_tool(
    fake_claude: FakeClaude, fake_claude_client: ClientFactory
) -> None:
    def plan_from_schema(request: dict[str, Any]) -> dict[str, Any]:
        tool = offered_tool(request)
        steps = [f"step for {key}" for key in tool["input_schema"]["properties"]]
        return {"tool_use": {"name": tool["name"], "input": {"steps": steps}}}

    fake_claude.responder = plan_from_schema
    fake_claude.add_rule(
        respond=lambda req: {"text": f"echo {req['messages'][0]['content']}"}, match={"contains": "echo"}
    )
    client = fake_claude_client()

    planned = ask(client, tools=[PLAN_TOOL], tool_choice={"type": "tool", "name": "submit_plan"})
    assert planned.content[0].input == {"steps": ["step for steps"]}  # type: ignore[union-attr]
    assert ask(client, "echo me").content[0].text == "echo echo me"  # type: ignore[union-attr]

    fake_claude.responder = lambda req: {"nonsense": 1}
    with pytest.raises(anthropic.InternalServerError, match="Fake Claude crashed"):
        ask(client)


def test_all_request_text_exposes_every_string_sent(fake_claude: FakeClaude, fake_claude_client: ClientFactory) -> None:
    fake_claude.reply_text("ok")
    secret = 'pa"ss\nwörd-123'
    ask(fake_claude_client(), f"use {secret} please", system="sys")
    ask(fake_claude_client(), "clean")

    everything = fake_claude.all_request_text()
    assert secret in everything  # found despite JSON escaping of quote, newline and umlaut
    assert "clean" in everything and "sys" in everything
    assert "never-sent-token" not in everything


def test_rule_from_python_objects_and_reset(fake_claude: FakeClaude, fake_claude_client: ClientFactory) -> None:
    fake_claude.add_rule(Rule(respond={"text": "obj"}, times=1))
    assert ask(fake_claude_client()).content[0].text == "obj"  # type: ignore[union-attr]
    fake_claude.reset()
    assert fake_claude.requests == [] and fake_claude.rules == []
    with pytest.raises(anthropic.InternalServerError):
        ask(fake_claude_client())


# -- cassettes ----------------------------------------------------------------------------


def test_record_then_replay_round_trip(tmp_path: Path) -> None:
    cassette = tmp_path / "cassettes" / "plan.json"
    with FakeClaude(api_key="real-upstream-key") as upstream:
        upstream.reply_tool_use("submit_plan", {"steps": ["a"]}, times=1)
        upstream.reply_text("summary", match={"contains": "summarise"})
        with CassetteRecorder(upstream.url, cassette, api_key="real-upstream-key") as recorder:
            client = anthropic.Anthropic(api_key="dummy", base_url=recorder.url, max_retries=0)
            live_tool = ask(client, "plan it", tools=[PLAN_TOOL], metadata={"user_id": "run-1"})
            live_text = ask(client, "summarise")
            with pytest.raises(anthropic.InternalServerError):  # upstream has no rule for this: recorded too
                ask(client, "unscripted")
        assert upstream.message_requests()[0].headers["authorization"] == "Bearer real-upstream-key"

    data = json.loads(cassette.read_text())
    assert len(data["interactions"]) == 3
    assert "real-upstream-key" not in cassette.read_text() and "dummy" not in cassette.read_text()
    assert data["interactions"][0]["response"]["status"] == 200

    with FakeClaude() as replay:
        replay.load_cassette(cassette)
        client = anthropic.Anthropic(api_key="dummy", base_url=replay.url, max_retries=0)
        again = ask(client, "plan it", tools=[PLAN_TOOL], metadata={"user_id": "run-2"})  # metadata ignored
        assert again.content[0].input == live_tool.content[0].input  # type: ignore[union-attr]
        assert again.id == live_tool.id and again._request_id == live_tool._request_id
        with pytest.raises(anthropic.InternalServerError) as info:
            ask(client, "summarise DIFFERENTLY")
        assert "cassette mismatch at interaction #1" in str(info.value)
        assert "summarise DIFFERENTLY" in str(info.value)
        assert ask(client, "summarise").content[0].text == live_text.content[0].text  # type: ignore[union-attr]
        with pytest.raises(anthropic.InternalServerError, match="no script rule matched"):
            ask(client, "unscripted")  # the recorded upstream error replays verbatim
        with pytest.raises(anthropic.InternalServerError, match="cassette exhausted"):
            ask(client, "one more")


def test_unordered_replay(tmp_path: Path) -> None:
    cassette = tmp_path / "c.json"
    with FakeClaude() as upstream, CassetteRecorder(upstream.url, cassette) as recorder:
        upstream.add_rule(respond=lambda req: {"text": "re: " + req["messages"][0]["content"]})
        client = anthropic.Anthropic(api_key="k", base_url=recorder.url, max_retries=0)
        ask(client, "one")
        ask(client, "two")
    with FakeClaude() as replay:
        replay.load_cassette(cassette, ordered=False)
        client = replay.client()
        assert ask(client, "two").content[0].text == "re: two"  # type: ignore[union-attr]
        assert ask(client, "one").content[0].text == "re: one"  # type: ignore[union-attr]


def test_streamed_response_records_and_replays(tmp_path: Path) -> None:
    cassette = tmp_path / "stream.json"

    def stream_text(client: anthropic.Anthropic) -> str:
        with client.messages.stream(model=MODEL, max_tokens=9, messages=[{"role": "user", "content": "s"}]) as s:
            return s.get_final_text()

    with FakeClaude() as upstream, CassetteRecorder(upstream.url, cassette) as recorder:
        upstream.reply_text("streamed hello")
        assert stream_text(anthropic.Anthropic(api_key="k", base_url=recorder.url, max_retries=0)) == "streamed hello"
    (interaction,) = json.loads(cassette.read_text())["interactions"]
    assert "event: message_start" in interaction["response"]["body_text"]
    with FakeClaude() as replay:
        replay.load_cassette(cassette)
        assert stream_text(replay.client()) == "streamed hello"


def test_record_cli_needs_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert cli_main(["--record-to", str(tmp_path / "c.json"), "--upstream", "http://127.0.0.1:9"]) == 2


# -- standalone process -------------------------------------------------------------------


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"respond": {"text": "from another process"}, "times": 1}]))
    root = Path(airflow_claude.testing.__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    stderr = (tmp_path / "stderr.txt").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_claude.testing.fake_claude", "--port", "0", "--script", str(script)],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("FAKE_CLAUDE_URL="), (line, (tmp_path / "stderr.txt").read_text())
        yield proc, line.split("=", 1)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()
        stderr.close()


def test_standalone_process(standalone: tuple[subprocess.Popen[str], str]) -> None:
    proc, url = standalone
    client = anthropic.Anthropic(api_key="test-key", base_url=url, max_retries=0)
    assert ask(client, "hi there").content[0].text == "from another process"  # type: ignore[union-attr]

    remote = RemoteFakeClaude(url)
    assert remote.health()
    (seen,) = remote.requests()
    assert seen["path"] == "/v1/messages" and seen["headers"]["authorization"] == "<redacted>"
    assert "hi there" in remote.all_request_text()

    assert remote.load_script([{"respond": {"text": "rescripted"}}]) == 1
    assert ask(client).content[0].text == "rescripted"  # type: ignore[union-attr]
    remote.reset()
    assert remote.requests() == []

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0


def test_async_client(fake_claude: FakeClaude) -> None:
    fake_claude.reply_text("async ok")

    async def run() -> str:
        async with fake_claude.async_client() as client:
            message = await client.messages.create(
                model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
            )
        return message.content[0].text  # type: ignore[union-attr]

    assert asyncio.run(run()) == "async ok"


def test_env_fixture_points_sdk_at_fake(fake_claude_env: FakeClaude) -> None:
    fake_claude_env.reply_text("via env")
    client = anthropic.Anthropic(max_retries=0)
    assert ask(client).content[0].text == "via env"  # type: ignore[union-attr]
