"""The fault suite's machinery: the offline Claude's behaviour, the runs, the injections.

Phases on one Airflow (scheduler, dag-processor, api-server, triggerer; PostgreSQL; LocalExecutor,
or CeleryExecutor with two workers and a private Redis broker):

1. every step fault and every Claude fault, ``runs_per_fault`` runs each, all triggered at once
   (a killer thread SIGKILLs the task processes or workers that wait for it);
2. the scheduler killed with SIGKILL (and restarted) while a mutating step is in flight;
3. every connection to the metadata database terminated while a mutating step is in flight;
4-6. CeleryExecutor only (``tests/faults/on_celery.py``): a whole Celery worker SIGKILLed before, then
   after, its step's write; the Redis broker restarted while messages wait in it.

The faults are in ``faults.py``; each run is then measured (``figures.py``) from Airflow's REST
API and the external effects ledger.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg2

from airflow_claude.testing import FakeClaude
from airflow_claude.testing.fake_claude import forced_tool_name
from tests.harness.airflow_instance import AirflowApiError, AirflowInstance, free_port

from . import effects
from .faults import AUTOMATION, LOCAL, Fault, faults_for

PG = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"]
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MODEL = "claude-sonnet-5-5"
#: Steps of the compiled plan, and those with a compensation (undone in reverse order).
PLAN_STEPS = ("extract", "check", "aggregate", "write_report", "notify", "publish")
COMPENSABLE = ("write_report", "notify")


def airflow_env(claude_url: str, effects_url: str) -> dict[str, str]:
    """Airflow settings of the suite: the offline Claude, the ledger, fast failure detection."""
    conn = {"conn_type": "anthropic", "host": claude_url, "password": "faults-key", "extra": {"model": MODEL}}
    return {
        "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(conn),
        effects.DSN_ENV: effects_url,
        "AIRFLOW__CORE__PARALLELISM": "6",
        "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": "64",
        # the supervisor notices a finished task within 2 s instead of up to 5 s (worker slots are the
        # bottleneck); 8 failed heartbeats in a row (not 3) before it gives a task up, as before
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
        "AIRFLOW__WORKERS__MAX_FAILED_HEARTBEATS": "8",
        # a busy 2-CPU machine can take long to parse a DAG file: never mistake that for a fault
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "180",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "240",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",  # the files never change
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        # a task whose worker died is failed (and retried) after 30 s without heartbeat (default 300 s)
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        # a scheduler silent for 60 s is dead (default 30 s: a starved scheduler loop took up to 23 s
        # here, declared itself dead and reset its own tasks); its tasks are reset within 15 s after
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "60",
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "15",
    }


# ------------------------------------------------------------------ the offline Claude

#: case -> (which call, how many times, the answer); "delay"/"invalid" are built per request.
CLAUDE_FAULTS: dict[str, tuple[str, int | None, Any]] = {
    "claude_429": ("plan", 1, {"error": {"status": 429, "retry_after": 0.5}}),
    "claude_529": ("plan", 3, {"error": {"status": 529}}),
    "claude_500": ("plan", 2, {"error": {"status": 500}}),
    "claude_timeout": ("plan", 2, "delay"),
    "claude_529_review": ("review", 3, {"error": {"status": 529}}),
    "invalid_plan": ("plan", 1, "invalid"),
    "refusal": ("plan", None, {"text": "I can't help with planning this.", "stop_reason": "refusal"}),
}
CASE = re.compile(r"\[case=([a-z0-9_]+)#(\d+)\]")
REFUSAL_TEXT = "declined to plan"


def automation_steps(tool: str = "write_report") -> list[dict[str, Any]]:
    """The run-time plan: two mutating steps side by side (one level keeps the DAG run short)."""
    return [
        {"id": "write_report", "tool": tool, "args": {"title": "Revenue (automation)", "total": 100.0, "passed": True}},
        {
            "id": "notify",
            "tool": "notify",
            "args": {"channel": "#data", "message": "The revenue report is on its way.", "report_key": "automation"},
        },
    ]


class Claude:
    """The offline Claude: plans and reviews, with the scripted faults of the goal's ``[case=...]`` marker."""

    def __init__(self) -> None:
        self.fake = FakeClaude()
        self.fake.responder = self.answer
        self.calls: dict[tuple[str, str], int] = defaultdict(int)
        self.served: dict[str, int] = defaultdict(int)  # scripted faults answered, per goal marker
        self.lock = threading.Lock()

    def __enter__(self) -> Claude:
        self.fake.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.fake.__exit__(*exc)

    @property
    def url(self) -> str:
        return self.fake.url

    @staticmethod
    def goal_of(body: dict[str, Any]) -> str:
        """The run's goal: a planning prompt's ``<goal>`` block or the review's payload.

        Never the whole request: a planning prompt also carries the memory of earlier runs, with
        their goals (and markers) in it.
        """
        content = body["messages"][0]["content"]
        text = content if isinstance(content, str) else "".join(b.get("text", "") for b in content)
        found = re.search(r"<goal>\n(.*?)\n</goal>", text, re.S)
        if found:
            return found.group(1)
        try:
            return str(json.loads(text).get("goal", ""))
        except (ValueError, AttributeError):
            return ""

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        found = CASE.search(self.goal_of(body))
        case, marker = (found.group(1), found.group(0)) if found else ("none", "")
        purpose = "plan" if forced_tool_name(body) == "submit_plan" else "review"
        with self.lock:
            index = self.calls[(marker, purpose)]
            self.calls[(marker, purpose)] += 1
        spec = CLAUDE_FAULTS.get(case)
        if spec and spec[0] == purpose and (spec[1] is None or index < spec[1]):
            with self.lock:
                self.served[marker] += 1
            if spec[2] == "delay":
                return {"tool_use": {"name": "submit_plan", "input": {"steps": automation_steps()}}, "delay": 6.0}
            if spec[2] == "invalid":
                return {"tool_use": {"name": "submit_plan", "input": {"steps": automation_steps("write_reprt")}}}
            return dict(spec[2])
        if purpose == "plan":
            return {"tool_use": {"name": "submit_plan", "input": {"steps": automation_steps()}}}
        results = json.loads(body["messages"][0]["content"][0]["text"]).get("results", [])
        failed = [r["id"] for r in results if r.get("status") != "success"]
        verdict = {"verdict": "escalate", "reason": f"steps {failed} failed"} if failed else {}
        return {
            "tool_use": {
                "name": "submit_review",
                "input": verdict or {"verdict": "done", "reason": "every step succeeded", "summary": "ok"},
            }
        }


@dataclass
class Environment:
    airflow: AirflowInstance
    claude: Claude
    airflow_db: str
    effects_url: str
    events: list[str] = field(default_factory=list)
    restarts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    executor: str = LOCAL
    #: CeleryExecutor: session id (the worker component's pid) -> worker label, every incarnation
    sessions: dict[int, str] = field(default_factory=dict)
    #: lines the report prints under the table (what a fault did, beyond the columns)
    details: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {text}")
        print(f"[faults] {self.events[-1]}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ runs


@dataclass
class Run:
    fault: Fault
    index: int
    run_id: str = ""
    state: str | None = None
    checks: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def conf_for(fault: Fault, index: int) -> dict[str, Any]:
    conf: dict[str, Any] = {"faults": list(fault.faults)}
    if fault.dag_id == AUTOMATION:
        conf["goal"] = f"Write the revenue report and tell the team. [case={fault.name}#{index}]"
    return conf


def trigger(env: Environment, fault: Fault, runs_per_fault: int) -> list[Run]:
    runs = []
    for index in range(runs_per_fault):
        run = Run(fault, index)
        run.run_id = env.airflow.trigger(fault.dag_id, conf=conf_for(fault, index))
        runs.append(run)
    return runs


def _revive(env: Environment) -> None:
    """Restart a component that exited on its own, as a process supervisor would; counted in the report."""
    for name in env.airflow.dead_components():
        env.restarts[name] += 1
        env.note(f"{name} exited on its own; restarted")
        env.airflow.start_component(name, wait=False)


def _api(call: Callable[[], Any], attempts: int = 20) -> Any:
    """A REST call that rides out the moments the api-server or its database is unavailable."""
    for attempt in range(attempts):
        try:
            return call()
        except (AirflowApiError, httpx.HTTPError) as exc:
            if attempt == attempts - 1 or (isinstance(exc, AirflowApiError) and exc.status_code in (400, 404, 422)):
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


def dag_run_states(env: Environment, dag_id: str) -> dict[str, str]:
    states: dict[str, str] = {}
    offset = 0
    while True:
        params = {"limit": 100, "offset": offset}
        page = _api(lambda params=params: env.airflow.get(f"/dags/{dag_id}/dagRuns", params=params))
        chunk = page.get("dag_runs", [])
        states.update({r["dag_run_id"]: r["state"] for r in chunk})
        offset += len(chunk)
        if not chunk or offset >= int(page.get("total_entries", 0)):
            return states


def wait_for(env: Environment, runs: Iterable[Run], timeout: float, tick: Callable[[], None] | None = None) -> None:
    """Wait until every run ended; ``tick`` (a fault's injector) is called on every round."""
    pending = [r for r in runs if r.state is None]
    deadline = time.monotonic() + timeout
    progress = time.monotonic() + 30
    while pending:
        if tick:
            tick()
        _revive(env)
        if time.monotonic() > progress:
            progress = time.monotonic() + 30
            env.note(f"{len(pending)} runs still going: {sorted({r.fault.name for r in pending})}")
        for dag_id in {r.fault.dag_id for r in pending}:
            states = dag_run_states(env, dag_id)
            for run in [r for r in pending if r.fault.dag_id == dag_id]:
                if states.get(run.run_id) in ("success", "failed"):
                    run.state = states[run.run_id]
        pending = [r for r in pending if r.state is None]
        if pending and time.monotonic() > deadline:
            stuck = {
                r.run_id: sorted(
                    (t["task_id"], t["map_index"], t["state"], t["try_number"])
                    for t in env.airflow.task_instances(r.fault.dag_id, r.run_id)
                )
                for r in pending[:5]
            }
            raise AssertionError(f"{len(pending)} runs not finished after {timeout:.0f}s: {json.dumps(stuck)[:6000]}")
        if pending:
            time.sleep(3.0)


def wait_until(what: str, predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


class Killer(threading.Thread):
    """SIGKILLs the task processes (``sigkill_task``) or workers (``sigkill_worker``) that wait for it."""

    def __init__(self, env: Environment) -> None:
        super().__init__(name="fault-killer", daemon=True)
        self.env = env
        self.stop = threading.Event()
        self.done: set[int] = set()
        self.kills = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.wait(0.5):
                self._sweep()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _sweep(self) -> None:
        for kind in ("sigkill_task", "sigkill_worker"):
            for row in effects.holding(self.env.effects_url, kind):
                if row["id"] in self.done:
                    continue
                self.done.add(row["id"])
                # the worker first, so nobody is left to report the task's death: a real crash
                targets = [row["ppid"], row["pid"]] if kind == "sigkill_worker" else [row["pid"]]
                ours = set(self.env.airflow.instance_pids())  # never a process this suite did not start
                for pid in targets:
                    if pid in ours:
                        os.kill(pid, signal.SIGKILL)
                        self.kills += 1
                self.env.note(f"{kind}: SIGKILL {targets} ({row['run_id']} {row['step_id']} try {row['try_number']})")


def drop_connections(airflow_db: str) -> int:
    conn = psycopg2.connect(ADMIN_URL)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (airflow_db,),
            )
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def _holding_runs(env: Environment, runs: list[Run]) -> set[str]:
    ids = {r.run_id for r in runs}
    return {row["run_id"] for row in effects.holding(env.effects_url, "hold") if row["run_id"] in ids}


def run_phase(env: Environment, phase: int, runs_per_fault: int, timeout: float, only: Iterable[str] = ()) -> list[Run]:
    """Trigger the phase's runs, inject its fault, wait for every run to end."""
    faults = [f for f in faults_for(env.executor, only) if f.phase == phase]
    if not faults:
        return []
    runs = [run for fault in faults for run in trigger(env, fault, max(runs_per_fault, fault.min_runs))]
    env.note(f"phase {phase}: triggered {len(runs)} runs")
    injections = {f.inject for f in faults}
    if injections & {"celery_worker_kill", "redis_restart"}:
        from .on_celery import inject  # the CeleryExecutor's own faults

        inject(env, phase, runs, injections, timeout)
        return runs
    if "scheduler_restart" in injections or "db_drop" in injections:
        wait_until("every run's write_report to be in flight", lambda: len(_holding_runs(env, runs)) == len(runs), 600)
    if "scheduler_restart" in injections:
        env.note("SIGKILL the scheduler (LocalExecutor: with its workers), then restart it")
        env.airflow.restart_component("scheduler", sig=signal.SIGKILL, timeout=120)
        env.note("scheduler healthy again")
    if "db_drop" in injections:
        for _ in range(3):
            env.note(f"terminated {drop_connections(env.airflow_db)} metadata-DB connections")
            time.sleep(1.5)
    effects.release(env.effects_url, f"phase{phase}")
    killer = Killer(env) if {"kill_task", "kill_worker"} & injections else None
    if killer:
        killer.start()
    try:
        wait_for(env, runs, timeout)
    finally:
        if killer:
            killer.stop.set()
            killer.join(10)
    if killer and killer.error:
        raise killer.error
    return runs
