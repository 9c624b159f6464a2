"""Script rules: which scripted answer a request gets, and how answers become API bodies.

Rules are plain data (so a JSON file can hold them) and are validated when built, so a
typo in a test script fails at load time instead of silently never matching.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._tokens import estimate_tokens

__all__ = [
    "DEFAULT_ERROR_TYPES",
    "MESSAGES_PATH",
    "RequestContext",
    "Responder",
    "Rule",
    "error_body",
    "forced_tool_name",
    "load_rules",
    "offered_tool",
    "offered_tool_names",
]

MESSAGES_PATH = "/v1/messages"

Responder = Callable[[dict[str, Any]], Mapping[str, Any]]
"""Computes an answer from the request JSON; returns a ``respond`` mapping (or a full message)."""

MATCH_KEYS = frozenset({"call_index", "tool_name", "contains", "path", "model"})
KIND_KEYS = ("text", "tool_use", "json", "content", "error", "disconnect")
RESPOND_KEYS = frozenset(
    {*KIND_KEYS, "stop_reason", "stop_sequence", "stop_details", "usage", "delay", "headers", "id"}
)
ERROR_KEYS = frozenset({"status", "type", "message", "headers", "retry_after", "details", "error_code"})

DEFAULT_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class RequestContext:
    """What a rule may look at: the path, the parsed body, its raw text and its call index."""

    path: str
    body: Any
    text: str
    call_index: int


def forced_tool_name(body: Any) -> str | None:
    """The tool named by ``tool_choice: {"type": "tool", "name": ...}``, if any."""
    choice = body.get("tool_choice") if isinstance(body, Mapping) else None
    if isinstance(choice, Mapping) and choice.get("type") == "tool":
        name = choice.get("name")
        return str(name) if name is not None else None
    return None


def offered_tool_names(body: Any) -> list[str]:
    """Names of the tools offered in the request, in order."""
    tools = body.get("tools") if isinstance(body, Mapping) else None
    return [str(t["name"]) for t in tools or [] if isinstance(t, Mapping) and "name" in t]


def offered_tool(body: Any, name: str | None = None) -> dict[str, Any]:
    """The offered tool definition (default: the forced one, else the first); for computed replies."""
    wanted = name or forced_tool_name(body)
    tools = [t for t in (body.get("tools") or []) if isinstance(t, Mapping)]
    for tool in tools:
        if wanted is None or tool.get("name") == wanted:
            return dict(tool)
    raise KeyError(f"tool {wanted!r} was not offered (offered: {offered_tool_names(body)})")


def _check_keys(what: str, data: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"unknown {what} key(s) {unknown}; allowed: {sorted(allowed)}")


def validate_respond(respond: Mapping[str, Any]) -> None:
    """Reject unknown keys and ambiguous kinds early; the fake must never guess."""
    _check_keys("respond", respond, RESPOND_KEYS)
    kinds = [k for k in KIND_KEYS if k in respond]
    if not kinds:
        raise ValueError(f"respond needs one of {list(KIND_KEYS)}: {dict(respond)!r}")
    if len(kinds) > 1 and set(kinds) != {"text", "tool_use"}:
        raise ValueError(f"respond may combine only 'text' and 'tool_use', got {kinds}")
    error = respond.get("error")
    if error is not None:
        if not isinstance(error, Mapping):
            raise ValueError("respond.error must be an object")
        _check_keys("error", error, ERROR_KEYS)


@dataclass
class Rule:
    """One scripted answer: fires when ``match`` fits, at most ``times`` times (None = unlimited)."""

    respond: Mapping[str, Any] | Responder
    match: Mapping[str, Any] = field(default_factory=dict)
    times: int | None = None
    used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_keys("match", self.match, MATCH_KEYS)
        if not callable(self.respond):
            validate_respond(self.respond)
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0 or None")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        """Build a rule from its JSON shape ``{"match": ..., "respond": ..., "times": ...}``."""
        _check_keys("rule", data, frozenset({"match", "respond", "times", "comment"}))
        if "respond" not in data:
            raise ValueError(f"rule without 'respond': {dict(data)!r}")
        return cls(respond=data["respond"], match=dict(data.get("match") or {}), times=data.get("times"))

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.used >= self.times

    def matches(self, ctx: RequestContext) -> bool:
        """True when every ``match`` condition holds (rules without ``path`` target /v1/messages)."""
        m = self.match
        if ctx.path != m.get("path", MESSAGES_PATH):
            return False
        if "call_index" in m:
            wanted = m["call_index"]
            indexes = wanted if isinstance(wanted, Sequence) else [wanted]
            if ctx.call_index not in indexes:
                return False
        if "tool_name" in m:
            name = m["tool_name"]
            if forced_tool_name(ctx.body) != name and name not in offered_tool_names(ctx.body):
                return False
        if "model" in m and not (isinstance(ctx.body, Mapping) and ctx.body.get("model") == m["model"]):
            return False
        if "contains" in m:
            needles = [m["contains"]] if isinstance(m["contains"], str) else list(m["contains"])
            if not all(n in ctx.text for n in needles):
                return False
        return True

    def claim(self, ctx: RequestContext) -> bool:
        """Atomically match and consume one use, so concurrent requests cannot overdraw ``times``."""
        with self._lock:
            if self.exhausted or not self.matches(ctx):
                return False
            self.used += 1
            return True

    def describe(self) -> str:
        respond = getattr(self.respond, "__name__", "<callable>") if callable(self.respond) else self.respond
        return f"Rule(match={dict(self.match)}, times={self.times}, used={self.used}, respond={respond!r})"


def load_rules(source: str | Path | Mapping[str, Any] | Sequence[Any]) -> list[Rule]:
    """Rules from a JSON file path, a ``{"rules": [...]}`` mapping, or a list of rule mappings."""
    data: Any = source
    if isinstance(source, (str, Path)):
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    if isinstance(data, Mapping):
        _check_keys("script", data, frozenset({"rules", "comment"}))
        data = data.get("rules", [])
    if not isinstance(data, Sequence) or isinstance(data, str):
        raise ValueError("a script is a list of rules or an object with a 'rules' list")
    return [r if isinstance(r, Rule) else Rule.from_dict(r) for r in data]


def error_body(
    status: int,
    error_type: str | None,
    message: str | None,
    request_id: str,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The API's error envelope: ``{"type": "error", "error": {...}, "request_id": ...}``."""
    kind = error_type or DEFAULT_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    error: dict[str, Any] = {"type": kind, "message": message or f"Fake Claude scripted {kind} ({status})."}
    if details:
        error["details"] = dict(details)
    return {"type": "error", "error": error, "request_id": request_id}


def build_content(respond: Mapping[str, Any], new_tool_id: Callable[[], str]) -> list[dict[str, Any]]:
    """Content blocks for a success answer (text first, then tool uses, as Claude writes them)."""
    if "content" in respond:
        return [dict(b) for b in respond["content"]]
    if "json" in respond:
        return [{"type": "text", "text": json.dumps(respond["json"], ensure_ascii=False)}]
    blocks: list[dict[str, Any]] = []
    if "text" in respond:
        blocks.append({"type": "text", "text": str(respond["text"])})
    uses = respond.get("tool_use")
    if uses is not None:
        for use in [uses] if isinstance(uses, Mapping) else list(uses):
            blocks.append(
                {
                    "type": "tool_use",
                    "id": use.get("id") or new_tool_id(),
                    "name": use["name"],
                    "input": dict(use.get("input") or {}),
                }
            )
    return blocks


def default_stop_reason(content: Iterable[Mapping[str, Any]]) -> str:
    return "tool_use" if any(b.get("type") == "tool_use" for b in content) else "end_turn"


def output_tokens(content: Sequence[Mapping[str, Any]]) -> int:
    """Output estimate: the same ``ceil(len/4)`` rule over the content blocks; at least 1."""
    return max(1, estimate_tokens(list(content)))
