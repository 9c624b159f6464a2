"""Canonical JSON and content hashes: the basis of plan hashes, catalog fingerprints and idempotency keys."""

from __future__ import annotations

import hashlib
import json
from typing import Any

# One encoder for every call: ``json.dumps`` with options builds a new encoder each time.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_json(data: Any) -> str:
    """Byte-stable JSON: sorted keys, no whitespace, UTF-8 kept."""
    return _CANONICAL.encode(data)


def sha256_of(data: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``data``."""
    return "sha256:" + hashlib.sha256(canonical_json(data).encode()).hexdigest()
