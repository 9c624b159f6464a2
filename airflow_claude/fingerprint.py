"""Canonical JSON and content hashes: the basis of plan hashes, catalog fingerprints and idempotency keys."""

from __future__ import annotations

import hashlib
import json
import json.encoder
from collections.abc import Callable
from typing import Any


def json_encoder(
    item_separator: str, key_separator: str, *, default: Callable[[Any], Any] | None = None
) -> Callable[[Any], str]:
    """A reusable sorted-keys, UTF-8-keeping encoder, as fast as the C encoder allows.

    ``JSONEncoder.encode`` builds a new C encoder on every call (about 1 us, more than encoding
    a step's arguments); this one is built once. Without circular-reference markers, shared by
    every call, a failed call cannot leave stale ones behind: a cycle fails as a RecursionError
    (JSON documents cannot hold one). Falls back to ``JSONEncoder`` where the C encoder is missing.
    """
    python = json.JSONEncoder(
        sort_keys=True,
        ensure_ascii=False,
        check_circular=False,
        separators=(item_separator, key_separator),
        default=default,
    )
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has it
        return python.encode
    encode = make(
        None,  # markers: none (see above)
        python.default,
        json.encoder.encode_basestring,  # ensure_ascii=False
        None,  # indent: one line
        key_separator,
        item_separator,
        True,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan, as JSONEncoder's default; plan files reject NaN when they are read
    )

    def run(data: Any) -> str:
        return "".join(encode(data, 0))

    return run


# One encoder for every call.
_CANONICAL = json_encoder(",", ":", default=str)


def canonical_json(data: Any) -> str:
    """Byte-stable JSON: sorted keys, no whitespace, UTF-8 kept."""
    return _CANONICAL(data)


def sha256_of(data: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``data``."""
    return digest_of(canonical_json(data).encode())


def digest_of(encoded: bytes) -> str:
    """``sha256:<hex>`` of bytes already encoded (for example by :func:`canonical_json`)."""
    return "sha256:" + hashlib.sha256(encoded).hexdigest()
