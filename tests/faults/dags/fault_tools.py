"""The fault suite's catalog: the orders example's shape, with every side effect in the external ledger.

Each mutating tool records an attempt, then writes its effect with the step's idempotency key
(``tests/faults/effects.py``), so a duplicate shows up as a second row for one step, never as a
guess. A fault is injected when the DAG run's conf asks for it::

    {"faults": [{"step": "write_report", "kind": "crash_after_commit", "times": 1}]}

``times`` is how many calls of that step in that run get the fault (default 1: the first call to
reach the tool, whatever its try number; ``null``: every call). Each injection is recorded in the
ledger's ``faults_fired`` table. Kinds:

- ``exception``: the write is applied, then the tool raises (a lost response): Airflow retries.
- ``crash_after_commit``: the write is applied, then the task process is killed (SIGKILL).
- ``timeout``: the write is applied, then the tool hangs beyond the step's ``timeout_seconds``.
- ``crash_after_record``: the tool returns and the step ledger records the result, then the
  process is killed before Airflow hears of it: the retry must replay, not call again.
- ``sigkill_task`` / ``sigkill_worker``: the tool stops before writing and waits; the test kills
  the task process (or the worker that supervises it: the LocalExecutor worker, or the whole
  Celery worker) with SIGKILL.
- ``sigkill_worker_after_commit``: the write is applied, then the tool waits; the test kills the
  whole Celery worker that runs it with SIGKILL.
- ``hold``: the tool waits before writing until the test releases ``release`` (it injects a
  fault meanwhile), or for ``KILL_WAIT_LIMIT`` seconds at most.
- ``permanent_failure``: the tool raises before writing, on every listed try.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from pydantic import BaseModel

from airflow_claude.catalog import Catalog, Compensation, ToolContext, python_tool
from tests.faults import effects

#: An attempt waiting to be killed gives up (and fails) after this long; a hold goes on.
KILL_WAIT_LIMIT = 120.0
_WAIT_KINDS = ("sigkill_task", "sigkill_worker")


class InjectedFault(RuntimeError):
    """Raised by the fault injection (never by a real tool)."""


def fault_for(ctx: ToolContext) -> dict[str, Any] | None:
    """The fault the run's conf asks for at this call of this step, if any (recorded when it fires)."""
    dag_run = (ctx.airflow_context or {}).get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    for fault in conf.get("faults") or []:
        if fault.get("step") == ctx.step_id and effects.fire(ctx, fault["kind"], fault.get("times", 1)):
            return dict(fault)
    return None


def _before(ctx: ToolContext, fault: dict[str, Any] | None) -> None:
    kind = (fault or {}).get("kind")
    if kind in _WAIT_KINDS:  # the test kills this process (or its supervisor) now
        _wait_to_be_killed(ctx, str(kind))
    if kind == "hold":  # until the test releases it (it injects its fault meanwhile)
        name = str(fault.get("release", "hold"))  # type: ignore[union-attr]
        deadline = time.monotonic() + KILL_WAIT_LIMIT
        while time.monotonic() < deadline and not effects.released(name):
            time.sleep(0.5)
    if kind == "permanent_failure":
        raise InjectedFault(f"step {ctx.step_id}: the service refused the request (try {ctx.try_number})")


def _wait_to_be_killed(ctx: ToolContext, kind: str) -> None:
    ctx.log.info("fault %s: waiting to be killed (pid %s, worker %s)", kind, os.getpid(), os.getppid())
    deadline = time.monotonic() + KILL_WAIT_LIMIT
    while time.monotonic() < deadline:
        time.sleep(0.2)
    raise InjectedFault(f"{kind}: nobody killed pid {os.getpid()} within {KILL_WAIT_LIMIT:.0f}s")


def _after(ctx: ToolContext, fault: dict[str, Any] | None) -> None:
    kind = (fault or {}).get("kind")
    if kind == "sigkill_worker_after_commit":  # the effect is committed: the test kills the whole worker now
        _wait_to_be_killed(ctx, kind)
    if kind == "crash_after_commit":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "exception":
        raise InjectedFault(f"step {ctx.step_id}: the connection dropped after the write (try {ctx.try_number})")
    if kind == "timeout":
        time.sleep(float(fault.get("seconds", 600)))  # type: ignore[union-attr]
    if kind == "crash_after_record":
        _crash_after_the_ledger_records(ctx)


def _crash_after_the_ledger_records(ctx: ToolContext) -> None:
    """Kill this task process at the first XCom push after the tool returns.

    The runtime records the result in the step ledger, then pushes the provenance stamp: dying
    there leaves a recorded result and a task that Airflow sees as crashed. Patching the class is
    safe: this process runs this one task and dies with it.
    """
    from airflow_claude.runtime.provenance import PROVENANCE_XCOM_KEY

    cls = type(ctx.airflow_context["ti"])
    original = cls.xcom_push

    def xcom_push(self: Any, key: str, *args: Any, **kwargs: Any) -> Any:
        if key == PROVENANCE_XCOM_KEY:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, key, *args, **kwargs)

    cls.xcom_push = xcom_push


def perform(ctx: ToolContext, tool: str, payload: dict[str, Any] | None) -> dict[str, Any] | None:
    """Run one tool call with its fault: record the attempt, write the effect (mutating tools)."""
    fault = fault_for(ctx)
    kind = (fault or {}).get("kind")
    attempt = effects.begin_attempt(ctx, tool, kind) if payload is not None else None
    _before(ctx, fault)
    stored = effects.write_effect(ctx, tool, payload, attempt) if payload is not None and attempt else None
    _after(ctx, fault)
    return stored


def perform_undo(ctx: ToolContext, tool: str, original_key: str) -> dict[str, Any]:
    fault = fault_for(ctx)
    attempt = effects.begin_attempt(ctx, tool, (fault or {}).get("kind"))
    _before(ctx, fault)
    stored = effects.undo_effect(ctx, tool, original_key, attempt)
    _after(ctx, fault)
    return stored


# ------------------------------------------------------------------ tools


class Order(BaseModel):
    id: int
    region: str
    amount: float


class Orders(BaseModel):
    rows: list[Order]
    count: int


class Quality(BaseModel):
    passed: bool
    checked_rows: int


class Revenue(BaseModel):
    total: float
    regions: int


class Effect(BaseModel):
    effect_key: str
    written_on_try: int


class Report(Effect):
    total: float


class Notification(Effect):
    channel: str


class Undone(BaseModel):
    undone: str
    undo_key: str


@python_tool(max_retries=3, default_retries=2, max_timeout_seconds=120, circuit=None)
def query_orders(month: str, context: ToolContext) -> Orders:
    """Read one month's paid orders (deterministic rows)."""
    perform(context, "query_orders", None)
    rows = [Order(id=i, region=("emea", "amer", "apac")[i % 3], amount=float(10 + i % 7)) for i in range(30)]
    return Orders(rows=rows, count=len(rows))


@python_tool(max_retries=3, default_retries=2, max_timeout_seconds=120, circuit=None)
def check_quality(rows: list[Order], context: ToolContext, min_rows: int = 1) -> Quality:
    """Check the row count."""
    perform(context, "check_quality", None)
    return Quality(passed=len(rows) >= min_rows, checked_rows=len(rows))


@python_tool(max_retries=3, default_retries=2, max_timeout_seconds=120, circuit=None)
def aggregate_revenue(rows: list[Order], context: ToolContext) -> Revenue:
    """Sum revenue over the rows."""
    perform(context, "aggregate_revenue", None)
    return Revenue(total=round(sum(r.amount for r in rows), 2), regions=len({r.region for r in rows}))


@python_tool(
    side_effects="mutating",
    max_retries=3,
    default_retries=2,
    max_timeout_seconds=120,
    compensation=Compensation("delete_report", {"report_key": "output.effect_key"}),
    circuit=None,
)
def write_report(title: str, total: float, passed: bool, context: ToolContext) -> Report:
    """Store the revenue report (an effect in the ledger, once per idempotency key)."""
    stored = perform(context, "write_report", {"title": title, "total": total, "passed": passed})
    assert stored is not None
    return Report(effect_key=stored["idempotency_key"], written_on_try=stored["try_number"], total=total)


@python_tool(
    side_effects="mutating",
    max_retries=3,
    default_retries=2,
    max_timeout_seconds=120,
    compensation=Compensation("retract_notification", {"notification_key": "output.effect_key"}),
    circuit=None,
)
def notify(channel: str, message: str, report_key: str, context: ToolContext) -> Notification:
    """Post a message about the report (an effect in the ledger, once per idempotency key)."""
    stored = perform(context, "notify", {"channel": channel, "message": message, "report": report_key})
    assert stored is not None
    return Notification(effect_key=stored["idempotency_key"], written_on_try=stored["try_number"], channel=channel)


@python_tool(side_effects="mutating", max_retries=3, default_retries=2, max_timeout_seconds=120, circuit=None)
def publish_dashboard(report_key: str, context: ToolContext) -> Effect:
    """Publish the dashboard (an effect in the ledger; nothing undoes it)."""
    stored = perform(context, "publish_dashboard", {"report": report_key})
    assert stored is not None
    return Effect(effect_key=stored["idempotency_key"], written_on_try=stored["try_number"])


@python_tool(side_effects="mutating", max_retries=3, default_retries=2, max_timeout_seconds=120, circuit=None)
def delete_report(report_key: str, context: ToolContext) -> Undone:
    """Delete a stored report (the compensation of write_report)."""
    stored = perform_undo(context, "delete_report", report_key)
    return Undone(undone=report_key, undo_key=stored["idempotency_key"])


@python_tool(side_effects="mutating", max_retries=3, default_retries=2, max_timeout_seconds=120, circuit=None)
def retract_notification(notification_key: str, context: ToolContext) -> Undone:
    """Retract a message (the compensation of notify)."""
    stored = perform_undo(context, "retract_notification", notification_key)
    return Undone(undone=notification_key, undo_key=stored["idempotency_key"])


catalog = Catalog(
    [
        query_orders,
        check_quality,
        aggregate_revenue,
        write_report,
        notify,
        publish_dashboard,
        delete_report,
        retract_notification,
    ],
    name="faults",
)
