"""A circuit breaker per tool, across runs: a tool that keeps failing is cut off for a cool-down.

State lives in an Airflow Variable (``airflow_claude_circuit__<tool>``): shared by every worker
and run, visible and resettable by a person (delete the Variable to close the circuit). Updates
are read-modify-write, so under heavy concurrency a few extra calls may slip through before the
circuit opens: a breaker bounds the hammering, it is not a lock.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from airflow_claude.catalog.tool import CircuitPolicy
from airflow_claude.errors import AirflowClaudeError
from airflow_claude.variables import TaskSdkVariables

CIRCUIT_PREFIX = "airflow_claude_circuit__"


class CircuitOpen(RuntimeError, AirflowClaudeError):
    """The tool is cut off; the step fails at once instead of calling it."""


class CircuitBreaker:
    def __init__(self, tool: str, policy: CircuitPolicy, log: Any, store: Any = None) -> None:
        self.tool = tool
        self.policy = policy
        self.log = log
        self.key = CIRCUIT_PREFIX + tool
        self.store = store  # anything with get(key) -> str | None and set(key, str); default: Variables
        self._seen: dict[str, Any] | None = None  # the state check() read: record_success need not read again

    def _read(self) -> dict[str, Any]:
        try:
            raw = self.store.get(self.key) if self.store is not None else TaskSdkVariables().get(self.key)
            state = json.loads(raw) if raw else {}
            return state if isinstance(state, dict) else {}
        except Exception:
            self.log.warning("circuit %s: state unreadable; treating it as closed", self.tool, exc_info=True)
            return {}

    def _write(self, state: dict[str, Any]) -> None:
        text = json.dumps(state, sort_keys=True)
        try:
            if self.store is not None:
                self.store.set(self.key, text)
            else:
                description = f"airflow-claude circuit breaker of tool {self.tool}; delete to close"
                TaskSdkVariables().set(self.key, text, description)
        except Exception:  # the breaker must never fail a step by itself
            self.log.warning("circuit %s: cannot record state", self.tool, exc_info=True)

    def check(self, now: datetime | None = None) -> None:
        """Raise :class:`CircuitOpen` while the cool-down runs."""
        now = now or datetime.now(UTC)
        self._seen = self._read()
        open_until = self._seen.get("open_until")
        if open_until and datetime.fromisoformat(open_until) > now:
            raise CircuitOpen(
                f"tool '{self.tool}' is cut off until {open_until} after {self.policy.failures} failures within "
                f"{self.policy.window}; delete Variable {self.key} to retry sooner"
            )

    def record_failure(self, now: datetime | None = None) -> bool:
        """Count a failure; return True when this one opened the circuit."""
        now = now or datetime.now(UTC)
        state = self._read()
        recent = [t for t in state.get("failures", []) if datetime.fromisoformat(t) > now - self.policy.window]
        recent.append(now.isoformat())
        opened = len(recent) >= self.policy.failures
        state = {"failures": recent[-self.policy.failures :]}
        if opened:
            state["open_until"] = (now + self.policy.cool_down).isoformat()
        self._write(state)
        return opened

    def record_success(self) -> None:
        """Close the circuit's failure count; no write (and no read, after :meth:`check`) when it is clean."""
        state = self._seen if self._seen is not None else self._read()
        if state:
            self._write({})
