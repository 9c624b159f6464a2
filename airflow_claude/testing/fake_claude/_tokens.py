"""Deterministic token estimate and the prompt-caching simulation.

The real tokenizer is not public, so tests need a rule they can compute by hand: every
prompt piece costs ``ceil(len(canonical_json(piece)) / 4)`` tokens. The same rule feeds
``usage`` and ``count_tokens`` so the two always agree.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CacheAccount",
    "PromptCache",
    "Segment",
    "canonical_json",
    "estimate_tokens",
    "input_tokens",
    "prompt_segments",
]


def canonical_json(value: Any) -> str:
    """One spelling per value (sorted keys, no spaces, raw unicode) so estimates are stable."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def estimate_tokens(value: Any) -> int:
    """``ceil(len(text) / 4)``; non-strings are measured as their canonical JSON."""
    text = value if isinstance(value, str) else canonical_json(value)
    return math.ceil(len(text) / 4)


@dataclass(frozen=True)
class Segment:
    """One cacheable unit of the prompt: a tool, a system block or a message content block."""

    section: str
    payload: Any
    tokens: int
    cache_ttl: str | None


def _strip_cache_control(block: Any) -> Any:
    """Drop ``cache_control`` so marking a block for caching does not change its cost."""
    if isinstance(block, Mapping):
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def _ttl(block: Any) -> str | None:
    if isinstance(block, Mapping) and isinstance(block.get("cache_control"), Mapping):
        return str(block["cache_control"].get("ttl") or "5m")
    return None


def _segment(section: str, payload: Any, source: Any) -> Segment:
    return Segment(section, payload, estimate_tokens(payload), _ttl(source))


def prompt_segments(body: Mapping[str, Any]) -> list[Segment]:
    """Flatten a request into the API's cache order: tools, then system, then messages."""
    segments: list[Segment] = []
    for tool in body.get("tools") or []:
        segments.append(_segment("tools", _strip_cache_control(tool), tool))
    system = body.get("system")
    if isinstance(system, str):
        if system:
            block = {"type": "text", "text": system}
            segments.append(_segment("system", block, block))
    elif isinstance(system, Sequence):
        for block in system:
            segments.append(_segment("system", _strip_cache_control(block), block))
    for message in body.get("messages") or []:
        if not isinstance(message, Mapping):
            continue
        role = message.get("role")
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        for block in blocks:
            payload = {"role": role, "content": _strip_cache_control(block)}
            segments.append(_segment("messages", payload, block))
    top = body.get("cache_control")
    if isinstance(top, Mapping) and segments and segments[-1].cache_ttl is None:
        # Automatic caching: a top-level cache_control puts the breakpoint on the last block.
        last = segments[-1]
        segments[-1] = Segment(last.section, last.payload, last.tokens, str(top.get("ttl") or "5m"))
    return segments


def input_tokens(body: Mapping[str, Any]) -> int:
    """Total input estimate of a request (what ``count_tokens`` returns); at least 1."""
    return max(1, sum(s.tokens for s in prompt_segments(body)))


@dataclass(frozen=True)
class CacheAccount:
    """How one request's input tokens split between fresh, cache-write and cache-read."""

    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    ephemeral_5m_input_tokens: int
    ephemeral_1h_input_tokens: int


class PromptCache:
    """Remembers hashed prompt prefixes seen by one server instance.

    Every block carrying ``cache_control`` is a breakpoint. The longest breakpoint prefix
    already seen is read from the cache; tokens from there up to the last breakpoint are
    written; the rest is plain input. With a single breakpoint this is simply: first time
    -> creation, afterwards -> read.
    """

    def __init__(self, min_tokens: int = 0) -> None:
        self.min_tokens = min_tokens
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    def account(self, model: str, segments: Sequence[Segment]) -> CacheAccount:
        total = max(1, sum(s.tokens for s in segments))
        hasher = hashlib.sha256(model.encode())
        cumulative = 0
        breakpoints: list[tuple[int, str, str]] = []  # (prefix tokens, key, ttl)
        for seg in segments:
            hasher.update(canonical_json([seg.section, seg.payload]).encode())
            cumulative += seg.tokens
            if seg.cache_ttl is not None and cumulative >= max(self.min_tokens, 1):
                breakpoints.append((cumulative, hasher.copy().hexdigest(), seg.cache_ttl))
        if not breakpoints:
            return CacheAccount(total, 0, 0, 0, 0)
        with self._lock:
            hit = max((i for i, (_, key, _) in enumerate(breakpoints) if key in self._seen), default=-1)
            self._seen.update(key for _, key, _ in breakpoints)
        read = breakpoints[hit][0] if hit >= 0 else 0
        by_ttl = {"5m": 0, "1h": 0}
        previous = read
        for tokens, _, ttl in breakpoints[hit + 1 :]:
            by_ttl["1h" if ttl == "1h" else "5m"] += tokens - previous
            previous = tokens
        last = breakpoints[-1][0]
        return CacheAccount(
            input_tokens=total - last,
            cache_creation_input_tokens=last - read,
            cache_read_input_tokens=read,
            ephemeral_5m_input_tokens=by_ttl["5m"],
            ephemeral_1h_input_tokens=by_ttl["1h"],
        )
