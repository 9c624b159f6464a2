"""``FakeClaude``: a scripted, offline server speaking the Anthropic Messages API."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._http import BaseFakeServer, RecordedRequest, Reply
from ._script import (
    MESSAGES_PATH,
    RequestContext,
    Responder,
    Rule,
    build_content,
    default_stop_reason,
    forced_tool_name,
    load_rules,
    offered_tool_names,
    output_tokens,
    validate_respond,
)
from ._tokens import PromptCache, input_tokens, prompt_segments
from .cassette import VOLATILE_FIELDS, Cassette, CassettePlayer

if TYPE_CHECKING:
    import anthropic

__all__ = ["COUNT_TOKENS_PATH", "FakeClaude"]

COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
SPEND_LIMIT_MESSAGE = (
    "You have reached your specified API usage limits. You will regain access on the first day "
    "of next month at 00:00 UTC."
)


class FakeClaude(BaseFakeServer):
    """Answers ``/v1/messages`` from script rules (first match with uses left wins).

    Unmatched messages get a 500 saying so (with ``x-should-retry: false`` so the SDK fails
    at once); ``count_tokens`` is answered from the token estimate unless a rule targets it.
    """

    def __init__(
        self,
        rules: Iterable[Rule | Mapping[str, Any]] = (),
        *,
        responder: Responder | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        cache_min_tokens: int = 0,
    ) -> None:
        super().__init__(host, port)
        self._rules: list[Rule] = load_rules(list(rules))
        self.responder = responder
        self.api_key = api_key
        self.cache = PromptCache(cache_min_tokens)
        self.player: CassettePlayer | None = None

    # -- scripting -------------------------------------------------------------------------
    @property
    def rules(self) -> list[Rule]:
        with self._lock:
            return list(self._rules)

    def add_rule(
        self,
        rule: Rule | Mapping[str, Any] | None = None,
        *,
        respond: Mapping[str, Any] | Responder | None = None,
        match: Mapping[str, Any] | None = None,
        times: int | None = None,
    ) -> Rule:
        """Append a rule (a ``Rule``, its JSON mapping, or the keyword parts)."""
        if rule is None:
            if respond is None:
                raise ValueError("add_rule needs a rule or respond=")
            rule = Rule(respond=respond, match=dict(match or {}), times=times)
        elif not isinstance(rule, Rule):
            rule = Rule.from_dict(rule)
        with self._lock:
            self._rules.append(rule)
        return rule

    def load_script(self, source: str | Path | Mapping[str, Any] | Sequence[Any], *, append: bool = True) -> list[Rule]:
        """Add rules from a JSON file, a ``{"rules": [...]}`` mapping or a list."""
        rules = load_rules(source)
        with self._lock:
            if not append:
                self._rules.clear()
            self._rules.extend(rules)
        return rules

    def reply_text(
        self, text: str, *, match: Mapping[str, Any] | None = None, times: int | None = None, **extra: Any
    ) -> Rule:
        """Answer with a text block; ``extra`` = stop_reason, usage, delay, headers, ..."""
        return self.add_rule(respond={"text": text, **extra}, match=match, times=times)

    def reply_tool_use(
        self,
        name: str,
        input: Mapping[str, Any],
        *,
        match: Mapping[str, Any] | None = None,
        times: int | None = None,
        **extra: Any,
    ) -> Rule:
        """Answer with one ``tool_use`` block (stop_reason defaults to ``tool_use``)."""
        return self.add_rule(
            respond={"tool_use": {"name": name, "input": dict(input)}, **extra}, match=match, times=times
        )

    def reply_json(
        self, value: Any, *, match: Mapping[str, Any] | None = None, times: int | None = None, **extra: Any
    ) -> Rule:
        """Answer a structured-output request: one text block holding ``value`` as JSON."""
        return self.add_rule(respond={"json": value, **extra}, match=match, times=times)

    def reply_error(
        self,
        status: int,
        error_type: str | None = None,
        message: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
        error_code: str | None = None,
        match: Mapping[str, Any] | None = None,
        times: int | None = None,
        delay: float | None = None,
    ) -> Rule:
        """Answer with an Anthropic-shaped error body (type defaults from the status)."""
        error: dict[str, Any] = {"status": status}
        for key, value in (
            ("type", error_type),
            ("message", message),
            ("headers", dict(headers) if headers else None),
            ("retry_after", retry_after),
            ("error_code", error_code),
        ):
            if value is not None:
                error[key] = value
        respond: dict[str, Any] = {"error": error}
        if delay is not None:
            respond["delay"] = delay
        return self.add_rule(respond=respond, match=match, times=times)

    def reply_rate_limit(self, retry_after: float = 1.0, **kwargs: Any) -> Rule:
        """429 ``rate_limit_error`` with a ``retry-after`` header (the SDK waits that long)."""
        return self.reply_error(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit (fake).",
            retry_after=retry_after,
            **kwargs,
        )

    def reply_overloaded(self, **kwargs: Any) -> Rule:
        """529 ``overloaded_error`` (SDK: ``OverloadedError``)."""
        return self.reply_error(529, "overloaded_error", "Overloaded", **kwargs)

    def reply_api_error(self, **kwargs: Any) -> Rule:
        """500 ``api_error`` (SDK: ``InternalServerError``)."""
        return self.reply_error(500, "api_error", "Internal server error", **kwargs)

    def reply_spend_limit(self, **kwargs: Any) -> Rule:
        """429 with ``error.details.error_code = enforced_spend_limit_reached`` and no retry-after.

        SDK 2.x maps this to ``anthropic.EnforcedSpendLimitReachedError`` (a ``RateLimitError``).
        """
        return self.reply_error(
            429, "rate_limit_error", SPEND_LIMIT_MESSAGE, error_code="enforced_spend_limit_reached", **kwargs
        )

    def load_cassette(
        self,
        path: str | Path,
        *,
        ordered: bool = True,
        ignore_fields: Iterable[str] = VOLATILE_FIELDS,
    ) -> CassettePlayer:
        """Serve API calls from a recorded cassette instead of the rules."""
        self.player = CassettePlayer(Cassette.load(path), ordered=ordered, ignore_fields=ignore_fields)
        return self.player

    def unused_rules(self) -> list[Rule]:
        """Rules with a finite ``times`` that did not fire that often (scripted calls never made)."""
        return [r for r in self.rules if r.times is not None and r.used < r.times]

    def reset(self) -> None:
        """Forget requests, rules, responder, cassette and the prompt cache."""
        super().reset()
        with self._lock:
            self._rules.clear()
        self.responder = None
        self.player = None
        self.cache.clear()

    # -- convenience -----------------------------------------------------------------------
    def message_requests(self) -> list[RecordedRequest]:
        """The ``POST /v1/messages`` calls received (retries included)."""
        return self.requests_to(MESSAGES_PATH)

    @property
    def last_body(self) -> Any:
        """Parsed body of the most recent ``/v1/messages`` call."""
        calls = self.message_requests()
        if not calls:
            raise AssertionError("Fake Claude received no /v1/messages call")
        return calls[-1].body

    def client(self, *, api_key: str = "test-key", max_retries: int = 0, **kwargs: Any) -> anthropic.Anthropic:
        """A real ``anthropic.Anthropic`` pointed at this server (no retries unless asked)."""
        import anthropic

        return anthropic.Anthropic(api_key=api_key, base_url=self.url, max_retries=max_retries, **kwargs)

    def async_client(
        self, *, api_key: str = "test-key", max_retries: int = 0, **kwargs: Any
    ) -> anthropic.AsyncAnthropic:
        import anthropic

        return anthropic.AsyncAnthropic(api_key=api_key, base_url=self.url, max_retries=max_retries, **kwargs)

    # -- request handling ------------------------------------------------------------------
    def _admin(self, method: str, path: str, body: Any) -> Reply:
        """Adds ``POST /_fake/script`` (``?``-less; body = script) and ``GET /_fake/rules``."""
        if path == "/_fake/script" and method == "POST":
            try:
                script = body if isinstance(body, Mapping) else {"rules": body}
                append = bool(script.get("append", False)) if isinstance(body, Mapping) else False
                rules = self.load_script({"rules": script.get("rules", [])}, append=append)
            except (ValueError, TypeError, KeyError) as exc:
                return self.error_reply(400, "invalid_request_error", f"bad script: {exc}")
            return Reply.json(200, {"ok": True, "loaded": len(rules)})
        if path == "/_fake/rules" and method == "GET":
            return Reply.json(200, [r.describe() for r in self.rules])
        return super()._admin(method, path, body)

    def _handle(self, rec: RecordedRequest) -> Reply:
        if self.api_key is not None and self.api_key not in (
            rec.headers.get("x-api-key"),
            rec.headers.get("authorization", "").removeprefix("Bearer "),
        ):
            return self.error_reply(401, "authentication_error", "invalid x-api-key")
        if self.player is not None:
            return self.player.reply(rec, self)
        if rec.path in (MESSAGES_PATH, COUNT_TOKENS_PATH):
            problem = self._invalid(rec)
            if problem:
                return self.error_reply(400, "invalid_request_error", problem)
        ctx = RequestContext(rec.path, rec.body, rec.text, rec.call_index)
        for rule in self.rules:
            if rule.claim(ctx):
                return self._answer(rule.respond, rec)
        if rec.path == COUNT_TOKENS_PATH:
            return Reply.json(200, {"input_tokens": input_tokens(rec.body)}, {"request-id": self.next_id("req")})
        if rec.path == MESSAGES_PATH:
            if self.responder is not None:
                return self._answer(self.responder, rec)
            reply = self.error_reply(500, "api_error", self._no_match_message(rec))
            reply.headers["x-should-retry"] = "false"
            return reply
        return self.error_reply(404, "not_found_error", f"Fake Claude does not serve {rec.method} {rec.path}")

    @staticmethod
    def _invalid(rec: RecordedRequest) -> str | None:
        if rec.method != "POST":
            return f"{rec.path} accepts POST only"
        body = rec.body
        if not isinstance(body, Mapping):
            return "request body must be a JSON object"
        for key in ("model", "messages") if rec.path == COUNT_TOKENS_PATH else ("model", "max_tokens", "messages"):
            if key not in body:
                return f"{key}: Field required"
        if not isinstance(body["messages"], list) or not body["messages"]:
            return "messages: at least one message is required"
        return None

    def _no_match_message(self, rec: RecordedRequest) -> str:
        body = rec.body if isinstance(rec.body, Mapping) else {}
        last = body.get("messages", [{}])[-1] if body.get("messages") else {}
        content = last.get("content") if isinstance(last, Mapping) else None
        snippet = json.dumps(content, ensure_ascii=False)[:160] if content is not None else "?"
        rules = "; ".join(r.describe()[:200] for r in self.rules) or "none"
        return (
            f"Fake Claude: no script rule matched POST {rec.path} call_index={rec.call_index} "
            f"(forced tool={forced_tool_name(body)!r}, offered={offered_tool_names(body)}, "
            f"last message={snippet}). Rules: {rules}"
        )

    def _answer(self, respond: Mapping[str, Any] | Responder, rec: RecordedRequest) -> Reply:
        if callable(respond):
            produced = respond(copy.deepcopy(rec.body))
            if not isinstance(produced, Mapping):
                raise TypeError(f"responder returned {type(produced).__name__}, expected a mapping")
            if produced.get("type") == "message":  # a complete message body, served as-is
                return Reply.json(200, dict(produced), {"request-id": self.next_id("req")})
            validate_respond(produced)
            respond = produced
        delay = float(respond.get("delay") or 0.0)
        extra_headers = {str(k).lower(): str(v) for k, v in (respond.get("headers") or {}).items()}
        if respond.get("disconnect"):
            return Reply(0, delay=delay, disconnect=True)
        if "error" in respond:
            return self._error_answer(respond["error"], delay, extra_headers)
        if rec.path == COUNT_TOKENS_PATH:
            return Reply.json(200, {"input_tokens": input_tokens(rec.body)}, {"request-id": self.next_id("req")})
        message = self._message(respond, rec.body)
        request_id = self.next_id("req")
        headers = {"request-id": request_id, **extra_headers}
        if isinstance(rec.body, Mapping) and rec.body.get("stream"):
            headers.setdefault("content-type", "text/event-stream")
            return Reply(200, _sse(message).encode(), headers, delay)
        return Reply.json(200, message, headers, delay)

    def _error_answer(self, error: Mapping[str, Any], delay: float, headers: dict[str, str]) -> Reply:
        status = int(error.get("status", 500))
        headers = {**headers, **{str(k).lower(): str(v) for k, v in (error.get("headers") or {}).items()}}
        if error.get("retry_after") is not None:
            headers["retry-after"] = _seconds(error["retry_after"])
        details = dict(error.get("details") or {})
        if error.get("error_code"):
            details["error_code"] = error["error_code"]
        return self.error_reply(
            status, error.get("type"), error.get("message"), headers=headers, details=details or None, delay=delay
        )

    def _message(self, respond: Mapping[str, Any], body: Any) -> dict[str, Any]:
        body = body if isinstance(body, Mapping) else {}
        content = build_content(respond, lambda: self.next_id("toolu"))
        stop_reason = respond.get("stop_reason") or default_stop_reason(content)
        stop_sequence = respond.get("stop_sequence")
        if stop_reason == "stop_sequence" and stop_sequence is None:
            stop_sequence = next(iter(body.get("stop_sequences") or []), None)
        stop_details = respond.get("stop_details")
        if stop_reason == "refusal" and stop_details is None:
            stop_details = {"type": "refusal", "category": None, "explanation": None}
        account = self.cache.account(str(body.get("model", "")), prompt_segments(body))
        out = output_tokens(content)
        if stop_reason == "max_tokens" and isinstance(body.get("max_tokens"), int):
            out = body["max_tokens"]
        usage: dict[str, Any] = {
            "input_tokens": account.input_tokens,
            "output_tokens": out,
            "cache_creation_input_tokens": account.cache_creation_input_tokens,
            "cache_read_input_tokens": account.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": account.ephemeral_5m_input_tokens,
                "ephemeral_1h_input_tokens": account.ephemeral_1h_input_tokens,
            },
            "service_tier": "standard",
        }
        usage.update(respond.get("usage") or {})
        return {
            "id": respond.get("id") or self.next_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "claude-fake"),
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "stop_details": stop_details,
            "usage": usage,
        }


def _seconds(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


def _sse(message: Mapping[str, Any]) -> str:
    """The message as the SSE event sequence the streaming API sends."""
    events: list[tuple[str, dict[str, Any]]] = []
    usage = dict(message["usage"])
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "stop_details": None}
    start["usage"] = {**usage, "output_tokens": 1}
    events.append(("message_start", {"type": "message_start", "message": start}))
    for index, block in enumerate(message["content"]):
        if block.get("type") == "tool_use":
            shell = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block.get("input", {}))}
        elif block.get("type") == "text":
            shell = {**block, "text": ""}
            delta = {"type": "text_delta", "text": block.get("text", "")}
        else:
            shell, delta = dict(block), {}
        events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": shell}))
        if delta:
            events.append(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    delta_usage = {
        k: usage[k]
        for k in ("output_tokens", "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        if k in usage
    }
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": message["stop_reason"],
                    "stop_sequence": message["stop_sequence"],
                    "stop_details": message.get("stop_details"),
                },
                "usage": delta_usage,
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
