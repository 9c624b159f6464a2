"""Test helpers for code that calls Claude: an offline fake API server and its pytest fixtures."""

from __future__ import annotations

from .fake_claude import (
    Cassette,
    CassetteRecorder,
    FakeClaude,
    RecordedRequest,
    RemoteFakeClaude,
    Rule,
    estimate_tokens,
    input_tokens,
)

__all__ = [
    "Cassette",
    "CassetteRecorder",
    "FakeClaude",
    "RecordedRequest",
    "RemoteFakeClaude",
    "Rule",
    "estimate_tokens",
    "input_tokens",
]
