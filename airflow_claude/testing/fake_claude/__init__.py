"""An offline Claude: a real local HTTP server speaking the Anthropic Messages API.

See ``docs/fake-claude.md``. Stdlib only; ``anthropic`` is imported lazily by ``client()``.
"""

from __future__ import annotations

from ._http import RecordedRequest, Reply
from ._script import Responder, Rule, forced_tool_name, load_rules, offered_tool, offered_tool_names
from ._tokens import canonical_json, estimate_tokens, input_tokens
from .cassette import VOLATILE_FIELDS, Cassette, CassettePlayer, CassetteRecorder
from .remote import RemoteFakeClaude
from .server import COUNT_TOKENS_PATH, FakeClaude

__all__ = [
    "COUNT_TOKENS_PATH",
    "VOLATILE_FIELDS",
    "Cassette",
    "CassettePlayer",
    "CassetteRecorder",
    "FakeClaude",
    "RecordedRequest",
    "RemoteFakeClaude",
    "Reply",
    "Responder",
    "Rule",
    "canonical_json",
    "estimate_tokens",
    "forced_tool_name",
    "input_tokens",
    "load_rules",
    "offered_tool",
    "offered_tool_names",
]
