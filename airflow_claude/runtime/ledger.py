"""A step ledger in Airflow's task state store, which survives retries (XCom does not).

Before a tool runs, the step records that it started, with its idempotency key; when the tool
returns, it records the result. On a retry of the same task instance:

- a result recorded under the same key is returned as it is: the tool is not called again;
- a start without a result (the worker died, or the tool raised) calls the tool again with the
  SAME idempotency key, so a tool that hands the key to its external system is deduplicated there.

So tool calls are at-least-once, and effects are effectively-once for tools that honour the key
(like Temporal activities). A failed ledger write is logged and never fails a step that
succeeded. Entries expire after ``retention`` (the state store's garbage collection), which
keeps them while a person may still clear and re-run the task. The ledger knows nothing of
plans or operators: anything with ``get``/``set`` works as its store.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

LEDGER_PREFIX = "airflow_claude.ledger."
#: Results larger than this are not kept (a retry then calls the tool again, with the same key).
MAX_RESULT_BYTES = 60_000


class Store(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any, *, retention: timedelta | None = None) -> None: ...


class StepLedger:
    def __init__(
        self, store: Store | None, log: Any, retention: timedelta = timedelta(days=7), *, first_try: bool = False
    ) -> None:
        """``first_try``: Airflow's first try of this task instance, so no earlier try wrote an entry.

        Airflow gives every retry and every clear a new try number, so try 1 reads nothing: two
        api-server calls fewer per step. Were an entry there after all, the tool would be called
        again with the same idempotency key: the at-least-once promise, never a new key.
        """
        self.store = store
        self.log = log
        self.retention = retention
        self.first_try = first_try

    def recorded(self, idempotency_key: str) -> tuple[bool, Any]:
        """``(True, output)`` when this key's result is recorded; ``(False, None)`` otherwise."""
        entry = None if self.first_try else self._get("result")
        if isinstance(entry, dict) and entry.get("idempotency_key") == idempotency_key and "output" in entry:
            return True, entry["output"]
        return False, None

    def started_before(self, idempotency_key: str) -> int:
        """How many earlier tries started this key (0 on a first try)."""
        entry = None if self.first_try else self._get("started")
        if isinstance(entry, dict) and entry.get("idempotency_key") == idempotency_key:
            return int(entry.get("starts", 0))
        return 0

    def mark_started(self, idempotency_key: str, try_number: int, earlier_starts: int | None = None) -> None:
        """Record this try's start; ``earlier_starts`` (from :meth:`started_before`) saves a read."""
        earlier = self.started_before(idempotency_key) if earlier_starts is None else earlier_starts
        starts = earlier + 1
        self._set(
            "started",
            {
                "idempotency_key": idempotency_key,
                "try_number": try_number,
                "starts": starts,
                "at": datetime.now(UTC).isoformat(),
            },
        )

    def record_result(self, idempotency_key: str, output: Any, try_number: int) -> None:
        entry: dict[str, Any] = {
            "idempotency_key": idempotency_key,
            "try_number": try_number,
            "at": datetime.now(UTC).isoformat(),
        }
        size = len(json.dumps(output, default=str))
        if size <= MAX_RESULT_BYTES:
            entry["output"] = output
        else:
            entry["output_bytes"] = size  # too large to keep: a retry calls the tool again, same key
        self._set("result", entry)

    def _get(self, name: str) -> Any:
        if self.store is None:
            return None
        try:
            return self.store.get(LEDGER_PREFIX + name)
        except Exception:
            self.log.warning("step ledger: cannot read %s; the tool will run", name, exc_info=True)
            return None

    def _set(self, name: str, value: dict[str, Any]) -> None:
        if self.store is None:
            return
        try:
            self.store.set(LEDGER_PREFIX + name, value, retention=self.retention)
        except Exception:  # bookkeeping must never fail a step
            self.log.warning("step ledger: cannot record %s", name, exc_info=True)
