"""The per-tool circuit breaker: opens after repeated failures, cuts the tool off, closes after the cool-down."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from airflow_claude.catalog import CircuitPolicy
from airflow_claude.runtime.circuit import CircuitBreaker, CircuitOpen

POLICY = CircuitPolicy(failures=3, window=timedelta(minutes=1), cool_down=timedelta(minutes=5))
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class VariableStore:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value


def breaker(store: Any) -> CircuitBreaker:
    return CircuitBreaker("load_source", POLICY, logging.getLogger("test"), store=store)


def test_opens_after_repeated_failures_and_cuts_the_tool_off_for_the_cool_down() -> None:
    store = VariableStore()
    b = breaker(store)
    assert [b.record_failure(T0 + timedelta(seconds=i)) for i in range(3)] == [False, False, True]
    with pytest.raises(CircuitOpen, match="tool 'load_source' is cut off until 2026-11-27T12:05:02"):
        breaker(store).check(T0 + timedelta(minutes=4))  # another worker, another run: same state
    breaker(store).check(T0 + timedelta(minutes=6))  # the cool-down is over


def test_failures_outside_the_window_do_not_count() -> None:
    b = breaker(VariableStore())
    assert not b.record_failure(T0)
    assert not b.record_failure(T0 + timedelta(minutes=2))
    assert not b.record_failure(T0 + timedelta(minutes=2, seconds=10))
    b.check(T0 + timedelta(minutes=3))


def test_a_success_resets_the_count() -> None:
    store = VariableStore()
    b = breaker(store)
    b.record_failure(T0)
    b.record_failure(T0 + timedelta(seconds=1))
    b.record_success()
    assert not b.record_failure(T0 + timedelta(seconds=2))


def test_an_unreadable_store_never_blocks_or_fails_a_step() -> None:
    class Broken:
        def get(self, key: str) -> str:
            raise ConnectionError("down")

        def set(self, key: str, value: str) -> None:
            raise ConnectionError("down")

    b = breaker(Broken())
    b.check(T0)
    assert b.record_failure(T0) is False


def test_a_clean_success_after_a_check_costs_one_read_and_no_write() -> None:
    class Counting(VariableStore):
        reads = 0
        writes = 0

        def get(self, key: str) -> str | None:
            self.reads += 1
            return super().get(key)

        def set(self, key: str, value: str) -> None:
            self.writes += 1
            super().set(key, value)

    store = Counting()
    b = breaker(store)
    b.check(T0)
    b.record_success()
    assert (store.reads, store.writes) == (1, 0)
    b.record_failure(T0)
    b2 = breaker(store)
    b2.check(T0)
    b2.record_success()  # the failure count it saw is reset
    assert store.values[b2.key] == "{}"
