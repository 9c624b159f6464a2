"""The reusable JSON encoders: byte for byte what ``json.dumps`` gives, and safe to reuse after a failure."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_claude.fingerprint import canonical_json, digest_of, json_encoder, sha256_of

SAMPLES: list[Any] = [
    {"b": 1, "a": [1.5, 1e300, -0.0, 5e-324, True, False, None]},
    {"é": 'ünïcødé \u2028 \x7f \n \t " \\ /', "emoji": "\U0001f600"},
    {"nested": {"z": {"y": [{}, [], {"x": [1, [2, [3]]]}]}}},
    {"when": datetime(2026, 11, 27, tzinfo=UTC), "nan": float("nan"), "inf": float("-inf")},
    {1: "int keys", 2: "sorted as ints"},
    [],
    {},
    "a string",
    12345678901234567890,
    None,
]


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 4 else 4)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-(10**20), 10**20)
    if kind == 2:
        return rng.uniform(-1e6, 1e6)
    if kind == 3:
        return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 0x2FFF)])) for _ in range(5))
    if kind in (4, 5):
        return {f"k{rng.randrange(50)}": _random_json(rng, depth + 1) for _ in range(4)}
    return [_random_json(rng, depth + 1) for _ in range(4)]


@pytest.mark.parametrize("data", SAMPLES + [_random_json(random.Random(seed)) for seed in range(200)])
def test_canonical_json_matches_json_dumps(data: Any) -> None:
    want = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    assert canonical_json(data) == want
    assert sha256_of(data) == digest_of(want.encode())


@pytest.mark.parametrize("data", SAMPLES[:3] + [_random_json(random.Random(seed)) for seed in range(50)])
def test_pretty_encoder_matches_json_dumps(data: Any) -> None:
    encode = json_encoder(", ", ": ")
    assert encode(data) == json.dumps(data, sort_keys=True, separators=(", ", ": "), ensure_ascii=False)


def test_a_failed_encoding_leaves_the_encoder_usable() -> None:
    """No circular-reference markers are shared between calls, so none can go stale."""
    encode = json_encoder(",", ":")
    shared = {"x": [1, 2]}
    with pytest.raises(TypeError):
        encode({"a": shared, "b": object()})
    assert encode({"again": shared}) == '{"again":{"x":[1,2]}}'
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(RecursionError):
        encode(loop)
    assert encode([shared, shared]) == '[{"x":[1,2]},{"x":[1,2]}]'
