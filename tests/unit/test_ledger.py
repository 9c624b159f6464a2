"""The step ledger: a retry never performs a finished tool call twice; a failed write never fails a step."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from airflow_claude.catalog import Catalog, ToolContext, python_tool
from airflow_claude.runtime.ledger import LEDGER_PREFIX, MAX_RESULT_BYTES, StepLedger
from airflow_claude.runtime.provenance import PROVENANCE_XCOM_KEY, StepIdentity
from airflow_claude.runtime.step import PlanStepOperator

CALLS: list[dict[str, Any]] = []
FAIL_NEXT: list[str] = []


@python_tool(side_effects="mutating")
def charge(amount: int, context: ToolContext) -> dict[str, Any]:
    """Charge a customer once per idempotency key (the external system would dedupe by the key)."""
    CALLS.append({"key": context.idempotency_key, "try": context.try_number})
    if FAIL_NEXT:
        raise RuntimeError(FAIL_NEXT.pop())
    return {"charged": amount, "key": context.idempotency_key}


@python_tool
def big(n: int) -> dict[str, str]:
    """Return a large output."""
    CALLS.append({"n": n})
    return {"blob": "x" * n}


catalog = Catalog([charge, big])


class DictStore:
    """The task state store's interface, kept in memory; it survives 'retries' like the real one."""

    def __init__(self, broken: bool = False) -> None:
        self.data: dict[str, Any] = {}
        self.broken = broken
        self.retentions: list[timedelta | None] = []

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any, *, retention: timedelta | None = None) -> None:
        if self.broken:
            raise ConnectionError("state store unavailable")
        self.retentions.append(retention)
        self.data[key] = value


class TI:
    def __init__(self, try_number: int) -> None:
        self.dag_id, self.run_id, self.task_id, self.try_number = "d", "r", "pay", try_number
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str, key: str = "return_value", default: Any = None) -> Any:
        return default

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def run(tool: str, args: dict[str, Any], store: DictStore, try_number: int) -> tuple[Any, TI]:
    op = PlanStepOperator.for_step(
        task_id="pay",
        tool=catalog[tool],
        step_args=args,  # type: ignore[arg-type]
        identity=StepIdentity("p", "sha256:x", "pay", tool, "1", catalog.fingerprint),
    )
    ti = TI(try_number)
    return op.execute({"ti": ti, "task_state_store": store}), ti


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()
    FAIL_NEXT.clear()


def test_a_recorded_result_is_replayed_without_calling_the_tool() -> None:
    store = DictStore()
    first, _ = run("charge", {"amount": 5}, store, 1)
    again, ti = run("charge", {"amount": 5}, store, 2)  # e.g. the task is cleared and re-run
    assert again == first and len(CALLS) == 1
    assert ti.pushed[PROVENANCE_XCOM_KEY]["try_number"] == 2
    assert store.retentions and all(r == timedelta(days=7) for r in store.retentions)


def test_a_start_without_a_result_calls_again_with_the_same_key() -> None:
    store = DictStore()
    FAIL_NEXT.append("worker lost after the charge went out")
    with pytest.raises(RuntimeError):
        run("charge", {"amount": 5}, store, 1)
    assert store.data[LEDGER_PREFIX + "started"]["starts"] == 1
    output, _ = run("charge", {"amount": 5}, store, 2)
    assert [c["try"] for c in CALLS] == [1, 2] and CALLS[0]["key"] == CALLS[1]["key"] == output["key"]
    assert store.data[LEDGER_PREFIX + "started"]["starts"] == 2


def test_different_arguments_are_a_different_call() -> None:
    store = DictStore()
    run("charge", {"amount": 5}, store, 1)
    run("charge", {"amount": 6}, store, 2)
    assert len(CALLS) == 2 and CALLS[0]["key"] != CALLS[1]["key"]


def test_a_failing_ledger_never_fails_a_step_that_succeeded() -> None:
    output, _ = run("charge", {"amount": 5}, DictStore(broken=True), 1)
    assert output["charged"] == 5


def test_a_result_too_large_to_keep_is_recomputed_with_the_same_key() -> None:
    store = DictStore()
    run("big", {"n": MAX_RESULT_BYTES + 10}, store, 1)
    assert "output" not in store.data[LEDGER_PREFIX + "result"]
    run("big", {"n": MAX_RESULT_BYTES + 10}, store, 2)
    assert len(CALLS) == 2


def test_without_a_store_the_ledger_is_a_no_op() -> None:
    ledger = StepLedger(None, log=None)
    ledger.mark_started("k", 1)
    ledger.record_result("k", {"a": 1}, 1)
    assert ledger.recorded("k") == (False, None) and ledger.started_before("k") == 0


class CountingStore(DictStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, key: str, default: Any = None) -> Any:
        self.reads += 1
        return super().get(key, default)


def test_a_first_try_reads_nothing_and_a_retry_reads_each_entry_once() -> None:
    # each read and write is a call to the api-server on a real deployment: count them
    store = CountingStore()
    run("charge", {"amount": 5}, store, 1)
    assert (store.reads, len(store.retentions)) == (0, 2)
    store.data.pop(LEDGER_PREFIX + "result")  # as if try 1 died inside the tool
    run("charge", {"amount": 5}, store, 2)
    assert (store.reads, len(store.retentions)) == (2, 4)
    assert store.data[LEDGER_PREFIX + "started"]["starts"] == 2
