"""Trigger every run at once, wait for all of them, then measure each against its promises and sum up."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from . import measure, plan
from .deployment import GOAL
from .measure import AUTOMATION, LoadRun

TERMINAL = ("success", "failed")


def _api(call: Any, attempts: int = 10) -> Any:
    """A REST call that rides out a moment of an overloaded api-server (reads only, and idempotent triggers)."""
    from tests.harness.airflow_instance import AirflowApiError

    for attempt in range(attempts):
        try:
            return call()
        except (AirflowApiError, httpx.HTTPError) as exc:
            final = isinstance(exc, AirflowApiError) and exc.status_code in (400, 404, 409, 422)
            if final or attempt == attempts - 1:
                raise
            time.sleep(1.0 + attempt)
    raise AssertionError("unreachable")


def trigger_all(airflow: Any, compiled: int, automation: int) -> list[LoadRun]:
    """Trigger the runs from 8 threads, compiled and automation runs interleaved; run ids chosen here."""
    dag_ids = [plan.COMPILED] * compiled + [AUTOMATION] * automation
    step = max(1, len(dag_ids) // max(1, automation)) if automation else 1
    order = sorted(range(len(dag_ids)), key=lambda i: (i % step, i))  # spread the automation runs
    from tests.harness.airflow_instance import AirflowApiError

    tag = uuid.uuid4().hex[:6]

    def one(i: int) -> LoadRun:
        dag_id = dag_ids[i]
        conf = {"goal": f"{GOAL} (run {i})"} if dag_id == AUTOMATION else {}
        at = datetime.now(UTC)
        run_id = f"load__{tag}_{i:03d}"
        try:
            _api(lambda: airflow.trigger(dag_id, conf=conf, run_id=run_id))
        except AirflowApiError as exc:
            if exc.status_code != 409:  # 409: an earlier try, whose answer was lost, created it
                raise
        return LoadRun(dag_id, run_id, at)

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, order))


def wait_all(airflow: Any, runs: list[LoadRun], timeout: float) -> None:
    """Poll each DAG's run list until every run is terminal; fills state, start and end."""
    deadline = time.monotonic() + timeout
    by_id = {r.run_id: r for r in runs}
    while True:
        for dag_id in sorted({r.dag_id for r in runs}):
            offset = 0
            while True:
                params = {"limit": 100, "offset": offset}
                page = _api(lambda d=dag_id, p=params: airflow.get(f"/dags/{d}/dagRuns", params=p))
                chunk = page.get("dag_runs", [])
                for row in chunk:
                    run = by_id.get(row["dag_run_id"])
                    if run is not None:
                        run.state = row["state"]
                        run.start, run.end = measure.ts(row.get("start_date")), measure.ts(row.get("end_date"))
                offset += len(chunk)
                if not chunk or offset >= int(page.get("total_entries", 0)):
                    break
        waiting = [r for r in runs if r.state not in TERMINAL]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(waiting)} of {len(runs)} runs not finished after {timeout:.0f}s")
        time.sleep(2.0)


@dataclass
class Figures:
    runs: list[LoadRun]
    checks: dict[str, measure.RunChecks] = field(default_factory=dict)
    delays: dict[str, list[float]] = field(default_factory=dict)  # compiled | automation -> seconds
    delays_left_out: int = 0
    slot_waits: list[float] = field(default_factory=list)  # scheduled_when -> start_date (waiting for a slot too)
    loop_ms: list[float] = field(default_factory=list)
    window_s: float = 0.0
    executed: int = 0
    per_worker: dict[str, int] = field(default_factory=dict)

    def total(self, name: str) -> int:
        return sum(int(getattr(c, name)) for c in self.checks.values())

    @property
    def runs_per_minute(self) -> float:
        return 60.0 * len(self.runs) / self.window_s if self.window_s else float("nan")

    def walls(self, kind: str) -> list[float]:
        return [(r.end - r.triggered_at).total_seconds() for r in self.runs if r.kind == kind and r.end]


def collect(env: Any, runs: list[LoadRun], started: float, ended: float) -> Figures:
    """Measure every run (REST API, metadata DB, ledger) and the scheduler loop over the load window."""
    airflow = env.airflow
    figures = Figures(runs)
    xcoms = measure.outputs(env.airflow_db_url, sorted({r.dag_id for r in runs}))
    ledger, writes = measure.ledger_of(env.effects_url)
    delays: dict[str, list[float]] = {"compiled": [], "automation": []}
    hosts: dict[str, int] = {}
    for run in runs:
        tis = _api(lambda r=run: airflow.task_instances(r.dag_id, r.run_id))
        report = None
        if run.kind == "automation":
            report = _api(lambda r=run: _report(airflow, r))
        figures.checks[run.run_id] = measure.check_run(
            run, tis, xcoms, ledger.get((run.dag_id, run.run_id), []), writes.get((run.dag_id, run.run_id), []), report
        )
        got, left_out = measure.queue_delays(run, tis)
        delays[run.kind] += got
        figures.delays_left_out += left_out
        figures.slot_waits += measure.queue_delays(run, tis, since="scheduled_when")[0]
        for ti in tis:
            if ti.get("hostname"):
                figures.executed += 1
                hosts[ti["hostname"]] = hosts.get(ti["hostname"], 0) + 1
    figures.delays = delays
    first = min(r.triggered_at for r in runs)
    last = max((r.end for r in runs if r.end), default=first)
    figures.window_s = (last - first).total_seconds()
    figures.loop_ms = env.statsd.values("scheduler.scheduler_loop_duration", since=started, until=ended)
    names = {airflow.worker_hostname(name): name for name in airflow.celery_worker_names}
    figures.per_worker = {names.get(host, host): n for host, n in sorted(hosts.items())}
    return figures


def _report(airflow: Any, run: LoadRun) -> dict[str, Any] | None:
    from tests.harness.airflow_instance import AirflowApiError

    try:
        value = airflow.xcom(run.dag_id, run.run_id, "report", key="report")
    except AirflowApiError as exc:
        if exc.status_code == 404:
            return None
        raise
    return value if isinstance(value, dict) else None
