"""The fault suite on CeleryExecutor: its settings, which worker ran what, and the Celery-only injections.

The deployment: two Celery workers ``w1`` and ``w2`` on the queue ``default``, ``CONCURRENCY``
task slots each, a private Redis broker without persistence (the harness's ``"redis"``
component), the result backend and the metadata database on PostgreSQL.

- ``celery_worker_kill``: when a ``notify`` try waits to be killed (before its write, or after it
  committed), the whole worker running it (its main process, pool and task processes) is
  SIGKILLed, as a host crash would; the worker is started again once the step's next try has
  begun on the other worker (or after ``RESTART_AFTER`` seconds), as a supervisor would.
- ``redis_restart``: every worker slot holds a ``write_report`` and more wait in the broker's
  queue; Redis is restarted, so the waiting messages are lost; Airflow finds their tasks queued
  for longer than ``[scheduler] task_queued_timeout`` and queues them again.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import redis

from tests.harness.processes import proc_stat

from . import effects
from .harness import Environment, Run, wait_for, wait_until

WORKERS: dict[str, tuple[str, ...]] = {"w1": ("default",), "w2": ("default",)}
#: task slots per worker: 4 in all, under a parallelism of 6, so up to 2 tasks wait in the broker
CONCURRENCY = 2
SLOTS = CONCURRENCY * len(WORKERS)
QUEUE = "default"
#: a killed worker stays down at most this long when its step's next try has not begun elsewhere
RESTART_AFTER = 90.0
#: a task queued this long without starting is queued again (Airflow's default: 600 s)
TASK_QUEUED_TIMEOUT = 60


def celery_env() -> dict[str, str]:
    """Settings the Celery deployment adds to the suite's (``harness.airflow_env``)."""
    return {
        # messages lost by the broker leave their tasks queued: re-queue them after 60 s, checked
        # every 10 s (defaults 600 s and 120 s); above the longest honest wait for a slot here
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": str(TASK_QUEUED_TIMEOUT),
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
    }


def remember_workers(env: Environment) -> None:
    """Map each running worker's session id (its component pid) to a label: ``w1``, then ``w1#2`` after a restart."""
    for name in env.airflow.celery_worker_names:
        pid = env.airflow.pid_of(f"worker-{name}")
        if pid is not None and pid not in env.sessions:
            incarnation = 1 + sum(1 for label in env.sessions.values() if label.split("#")[0] == name)
            env.sessions[pid] = name if incarnation == 1 else f"{name}#{incarnation}"


def worker_of(env: Environment, pid: int) -> str | None:
    """The running worker whose session holds ``pid`` (a task process), or None."""
    stat = proc_stat(pid)
    if stat is None:
        return None
    for name in env.airflow.celery_worker_names:
        if env.airflow.pid_of(f"worker-{name}") == stat[3]:
            return name
    return None


def inject(env: Environment, phase: int, runs: list[Run], injections: set[str | None], timeout: float) -> None:
    if "celery_worker_kill" in injections:
        WorkerKiller(env, runs).run(timeout)
    if "redis_restart" in injections:
        restart_redis_mid_run(env, phase, runs, timeout)


# ------------------------------------------------------------------ a worker killed


class WorkerKiller:
    """Kills the worker of every try that waits for it, and starts it again later (see the module doc)."""

    def __init__(self, env: Environment, runs: list[Run]) -> None:
        self.env = env
        self.runs = {r.run_id: r for r in runs}
        self.kinds = {spec["kind"] for r in runs for spec in r.fault.faults}
        self.seen: set[int] = set()
        self.down: dict[str, tuple[float, list[dict[str, Any]]]] = {}  # worker -> (killed at, the tries it ran)

    def run(self, timeout: float) -> None:
        try:
            wait_for(self.env, list(self.runs.values()), timeout, tick=self.tick)
        finally:
            for name in list(self.down):
                self._start(name)

    def _waiting(self) -> list[dict[str, Any]]:
        rows = []
        for kind in self.kinds:
            query = effects.written_and_waiting if kind == "sigkill_worker_after_commit" else effects.holding
            rows += [r for r in query(self.env.effects_url, kind) if r["run_id"] in self.runs]
        return [r for r in rows if r["id"] not in self.seen]

    def tick(self) -> None:
        victims: dict[str, list[dict[str, Any]]] = {}
        for row in self._waiting():
            self.seen.add(row["id"])
            name = worker_of(self.env, row["pid"])
            if name is not None:  # never a process this suite did not start
                victims.setdefault(name, []).append(row)
        for name, rows in victims.items():
            pid = self.env.airflow.pid_of(f"worker-{name}")
            self.env.airflow.stop_component(f"worker-{name}", sig=signal.SIGKILL)
            self.down[name] = (time.monotonic(), rows)
            tries = ", ".join(f"{r['run_id']} {r['step_id']} try {r['try_number']} ({r['fault']})" for r in rows)
            self.env.note(f"SIGKILL worker-{name} (pid {pid}, its pool and task processes) running {tries}")
        for name, (killed_at, rows) in list(self.down.items()):
            if self._retried_elsewhere(rows) or time.monotonic() - killed_at > RESTART_AFTER:
                self._start(name)

    def _retried_elsewhere(self, rows: list[dict[str, Any]]) -> bool:
        for row in rows:
            later = [
                a
                for a in effects.attempts_of(self.env.effects_url, row["dag_id"], row["run_id"])
                if a["step_id"] == row["step_id"] and a["id"] > row["id"]
            ]
            if not later:
                return False
        return True

    def _start(self, name: str) -> None:
        killed_at, _ = self.down.pop(name)
        self.env.airflow.start_component(f"worker-{name}", timeout=120)
        remember_workers(self.env)
        self.env.note(f"worker-{name} started again, {time.monotonic() - killed_at:.0f}s after the kill")


def tries_by_worker(env: Environment, run: Run) -> str:
    """``notify: try 1 on w1 (TI hostname w1.host), never wrote; try 2 on w2 ...`` for a run's faulted step.

    The worker comes from the session of the process that made the attempt (``w1#2``: ``w1``
    after its restart); the TI hostname is what Airflow recorded for that try.
    """
    step = run.fault.faults[0]["step"]
    attempts = [a for a in effects.attempts_of(env.effects_url, run.fault.dag_id, run.run_id) if a["step_id"] == step]
    try:
        tries = env.airflow.task_tries(run.fault.dag_id, run.run_id, step)
        hosts = {int(t["try_number"]): str(t.get("hostname") or "?").split(".")[0] for t in tries}
    except Exception:  # the detail line is a nice-to-have; the figures come from elsewhere
        hosts = {}
    parts = [
        f"try {a['try_number']} on {env.sessions.get(a['sid'], '?')} (TI hostname {hosts.get(int(a['try_number']))}"
        f"{'' if a['outcome'] else ', never wrote'})"
        for a in attempts
    ]
    return f"`{run.fault.name}` #{run.index} `{step}`: " + "; ".join(parts)


# ------------------------------------------------------------------ the broker restarted


def _broker(env: Environment) -> redis.Redis:
    return redis.Redis.from_url(env.airflow.broker_url, socket_timeout=5)


def waiting_in_broker(env: Environment) -> int:
    """Messages waiting in the ``default`` queue (with its priority sub-queues)."""
    client = _broker(env)
    try:
        return sum(int(client.llen(key)) for key in client.scan_iter(match=f"{QUEUE}*") if client.type(key) == b"list")
    finally:
        client.close()


def restart_redis_mid_run(env: Environment, phase: int, runs: list[Run], timeout: float) -> None:
    ids = {r.run_id for r in runs}

    def held() -> int:
        return len({row["run_id"] for row in effects.holding(env.effects_url, "hold") if row["run_id"] in ids})

    wait_until(
        f"{SLOTS} write_report tries holding every worker slot and more waiting in the broker",
        lambda: held() >= SLOTS and waiting_in_broker(env) >= 1,
        600,
    )
    time.sleep(2.0)  # let the scheduler queue what parallelism allows
    before = waiting_in_broker(env)
    env.airflow.restart_component("redis", timeout=60)
    after = waiting_in_broker(env)
    env.note(f"Redis restarted with {held()} tries holding the slots: {before} queued messages before, {after} after")
    restarted = time.monotonic()
    effects.release(env.effects_url, f"phase{phase}")
    wait_for(env, runs, timeout)
    requeued = _stuck_in_queued_requeues(env, runs)
    env.details.append(
        f"`redis_restarted_mid_run`: {before - after} broker message(s) lost with the restart, "
        f"{requeued} task(s) re-queued by the scheduler after `task_queued_timeout` ({TASK_QUEUED_TIMEOUT} s); "
        f"every run ended {time.monotonic() - restarted:.0f} s after the restart"
    )


def _stuck_in_queued_requeues(env: Environment, runs: list[Run]) -> int:
    count = 0
    for run in runs:
        page = env.airflow.get(
            "/eventLogs", params={"run_id": run.run_id, "event": "stuck in queued reschedule", "limit": 100}
        )
        count += int(page.get("total_entries", 0))
    return count
