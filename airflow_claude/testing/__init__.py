"""Test helpers for code that calls Claude: an offline fake API server and its pytest fixtures.

Users' offline testing kit: stdlib and ``anthropic`` only; the pytest plugin also needs pytest
(the ``testing`` extra). The real-Airflow harness of this repository's own tests is ``tests/harness/``.
"""

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
