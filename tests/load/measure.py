"""The load figures: terminal states, effects and outputs per run, step queue delay, throughput, scheduler loop.

Sources, each measured: task instances from the REST API (``queued_when``, ``start_date``, states,
hostnames); step outputs from the metadata database's ``xcom`` table (one query instead of one REST
call per step); effects from the external ledger; the scheduler loop time from the StatsD timer
``scheduler.scheduler_loop_duration`` that the scheduler sends to the test's UDP receiver.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg2

from . import effects, plan

AUTOMATION = "load_automation"
STEP_IDS = tuple(s["id"] for s in plan.steps())
_MAPPED_STEPS = re.compile(r"attempt_\d+\.steps")


@dataclass
class LoadRun:
    dag_id: str
    run_id: str
    triggered_at: datetime
    state: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "automation" if self.dag_id == AUTOMATION else "compiled"


def ts(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (``q`` in [0, 100]); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def step_label(run: LoadRun, ti: dict[str, Any]) -> str | None:
    """The plan step a task instance runs, or None for the automation's and the saga's own tasks."""
    if run.kind == "compiled":
        return ti["task_id"] if ti["task_id"] in STEP_IDS else None
    if _MAPPED_STEPS.fullmatch(ti["task_id"]) and ti["map_index"] >= 0:
        return str(ti.get("rendered_map_index") or f"{ti['task_id']}[{ti['map_index']}]")
    return None


def queue_delays(run: LoadRun, tis: Iterable[dict[str, Any]], since: str = "queued_when") -> tuple[list[float], int]:
    """Seconds from ``since`` (``queued_when``, or ``scheduled_when``) to ``start_date`` of each step TI that ran.

    Also how many were left out: a run-time step that deferred and resumed keeps its first
    ``start_date`` but is scheduled and queued again, so its ``start_date`` can precede them.
    """
    delays: list[float] = []
    skipped = 0
    for ti in tis:
        if step_label(run, ti) is None or not ti.get("hostname"):
            continue
        queued, started = ts(ti.get(since)), ts(ti.get("start_date"))
        if queued is None or started is None or started < queued:
            skipped += 1
            continue
        delays.append((started - queued).total_seconds())
    return delays, skipped


def outputs(airflow_db_url: str, dag_ids: Sequence[str]) -> dict[tuple[str, str, str, int], Any]:
    """``(dag_id, run_id, task_id, map_index) -> return_value`` from the metadata database's ``xcom`` table."""
    dsn = airflow_db_url.replace("postgresql+psycopg2://", "postgresql://")
    conn = psycopg2.connect(dsn, connect_timeout=10)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT dag_id, run_id, task_id, map_index, value FROM xcom"
                " WHERE key = 'return_value' AND dag_id = ANY(%s)",
                (list(dag_ids),),
            )
            found = {}
            for dag_id, run_id, task_id, map_index, value in cur.fetchall():
                if isinstance(value, (bytes, memoryview, str)):
                    value = json.loads(bytes(value) if not isinstance(value, str) else value)
                found[(dag_id, run_id, task_id, map_index)] = value
            return found
    finally:
        conn.close()


@dataclass
class RunChecks:
    right: bool
    duplicates: int
    lost: int
    steps_ok: int
    effects: int
    absorbed: int
    retries: int


def check_run(
    run: LoadRun,
    tis: list[dict[str, Any]],
    xcoms: dict[tuple[str, str, str, int], Any],
    ledger: list[dict[str, Any]],
    writes: list[dict[str, Any]],
    report: dict[str, Any] | None,
) -> RunChecks:
    """One run against its promises: success, 20 steps succeeded, one effect per mutating step, every output kept."""
    by_step: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in ledger:
        by_step[row["step_id"]].append(row)
    steps = {label: ti for ti in tis if (label := step_label(run, ti)) is not None}
    right = run.state == "success"
    if not right:
        run.problems.append(f"run ended {run.state}")
    if run.kind == "automation" and (report or {}).get("status") != "succeeded":
        right = False
        run.problems.append(f"report status {(report or {}).get('status')!r}")
    ok = [label for label, ti in steps.items() if ti["state"] == "success"]
    if sorted(steps) != sorted(STEP_IDS) or len(ok) != len(STEP_IDS):
        right = False
        run.problems.append(f"steps {sorted(steps)} succeeded {len(ok)}/{len(STEP_IDS)}")
    duplicates = sum(len(rows) - 1 for rows in by_step.values())
    if duplicates:
        run.problems.append(f"duplicated effects: { {s: len(r) for s, r in by_step.items() if len(r) > 1} }")
    lost = 0
    for label in ok:
        ti = steps[label]
        value = xcoms.get((run.dag_id, run.run_id, ti["task_id"], ti["map_index"]))
        if value is None:
            lost += 1
            run.problems.append(f"lost output: {label} succeeded without a return_value")
        elif label in plan.MUTATING:
            rows = by_step.get(label, [])
            if not rows or value.get("effect_key") != rows[0]["idempotency_key"]:
                lost += 1
                run.problems.append(f"output of {label} names {value.get('effect_key')}, ledger has {rows[:1]}")
    for label in plan.MUTATING:
        if label in ok and label not in by_step:
            lost += 1
            run.problems.append(f"no effect for {label}")
    for label in set(by_step) - set(plan.MUTATING):
        run.problems.append(f"unexpected effect for {label}")
    return RunChecks(
        right=right,
        duplicates=duplicates,
        lost=lost,
        steps_ok=len(ok),
        effects=len(ledger),
        absorbed=sum(1 for w in writes if w["outcome"] == "conflict"),
        retries=sum(max(0, int(ti.get("try_number") or 1) - 1) for ti in tis),
    )


ByRun = dict[tuple[str, str], list[dict[str, Any]]]


def ledger_of(effects_url: str) -> tuple[ByRun, ByRun]:
    """Effects and write attempts per ``(dag_id, run_id)``."""
    fx: ByRun = defaultdict(list)
    for row in effects.rows(effects_url, "SELECT idempotency_key, dag_id, run_id, step_id FROM effects ORDER BY at"):
        fx[(row["dag_id"], row["run_id"])].append(row)
    wr: ByRun = defaultdict(list)
    for row in effects.rows(effects_url, "SELECT dag_id, run_id, step_id, outcome FROM writes"):
        wr[(row["dag_id"], row["run_id"])].append(row)
    return fx, wr
