"""The faults of the suite: one row of the table each, where it is injected and how it must end.

Each fault names the deployments it is measured on: the LocalExecutor suite (``test_faults.py``)
and the CeleryExecutor suite (``test_faults_celery.py``, two workers and a private Redis broker).
Faults of a process the other deployment does not have (a LocalExecutor worker, a Celery worker,
the broker) belong to one of them only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

COMPILED = "faults_orders"
AUTOMATION = "faults_automation"
LOCAL = "local"
CELERY = "celery"
BOTH = (LOCAL, CELERY)


@dataclass(frozen=True)
class Fault:
    """One row of the table: a fault, where it is injected, and the terminal state it must lead to."""

    name: str
    category: str  # step | claude | infrastructure
    what: str
    dag_id: str = COMPILED
    faults: tuple[dict[str, Any], ...] = ()  # the tools' fault specs (DAG run conf)
    expected: str = "success"
    inject: str | None = None  # kill_task | kill_worker | scheduler_restart | db_drop | celery_*, redis_restart
    phase: int = 1
    executors: tuple[str, ...] = (LOCAL,)  # the deployments it is measured on
    min_runs: int = 1  # runs it needs whatever the size (redis_restarted_mid_run fills every worker slot)


def _f(step: str, kind: str, times: int | None = 1, **extra: Any) -> dict[str, Any]:
    return {"step": step, "kind": kind, "times": times, **extra}


FAULTS: tuple[Fault, ...] = (
    Fault("none", "step", "no fault (baseline)", executors=BOTH),
    Fault(
        "read_step_exception",
        "step",
        "read-only step `extract` raises on its first call",
        faults=(_f("extract", "exception"),),
    ),
    Fault(
        "exception_after_write",
        "step",
        "`write_report` applies its write, then raises (a lost response), once",
        faults=(_f("write_report", "exception"),),
        executors=BOTH,
    ),
    Fault(
        "timeout_after_write",
        "step",
        "`write_report` applies its write, then hangs past its 20 s timeout, once",
        faults=(_f("write_report", "timeout", seconds=600),),
    ),
    Fault(
        "crash_after_commit",
        "step",
        "`notify` commits its effect, then its task process is SIGKILLed before returning",
        faults=(_f("notify", "crash_after_commit"),),
        executors=BOTH,
    ),
    Fault(
        "crash_after_ledger_record",
        "step",
        "`write_report` returns, the step ledger records it, then the task process is SIGKILLed",
        faults=(_f("write_report", "crash_after_record"),),
        executors=BOTH,
    ),
    Fault(
        "sigkill_task_mid_step",
        "step",
        "the task process of `write_report` is SIGKILLed by the test mid-step",
        faults=(_f("write_report", "sigkill_task"),),
        inject="kill_task",
    ),
    Fault(
        "sigkill_worker_mid_step",
        "step",
        "the LocalExecutor worker running `notify` (supervisor and task) is SIGKILLed mid-step",
        faults=(_f("notify", "sigkill_worker"),),
        inject="kill_worker",
    ),
    Fault(
        "permanent_failure",
        "step",
        "`publish` fails on every try: the run fails, `notify` and `write_report` are undone",
        faults=(_f("publish", "permanent_failure", None),),
        expected="failed",
        executors=BOTH,
    ),
    Fault(
        "permanent_failure_faulty_undo",
        "step",
        "as above, and each compensation fails once (crash after commit, exception after write)",
        faults=(
            _f("publish", "permanent_failure", None),
            _f("undo_notify", "crash_after_commit"),
            _f("undo_write_report", "exception"),
        ),
        expected="failed",
        executors=BOTH,
    ),
    Fault("claude_429", "claude", "Claude answers 429 (retry-after 0.5 s) once", dag_id=AUTOMATION),
    Fault(
        "claude_529",
        "claude",
        "Claude answers 529 three times (two in-process tries, one Airflow retry)",
        dag_id=AUTOMATION,
        executors=BOTH,
    ),
    Fault("claude_500", "claude", "Claude answers 500 twice", dag_id=AUTOMATION),
    Fault(
        "claude_timeout", "claude", "Claude answers after 6 s, beyond the 4 s call timeout, twice", dag_id=AUTOMATION
    ),
    Fault("claude_529_review", "claude", "the review call gets 529 three times", dag_id=AUTOMATION),
    Fault(
        "invalid_plan", "claude", "the first plan names an unknown tool (repaired on the next call)", dag_id=AUTOMATION
    ),
    Fault(
        "refusal",
        "claude",
        "Claude refuses to plan: the run must fail with the refusal in the report",
        dag_id=AUTOMATION,
        expected="failed",
    ),
    Fault(
        "automation_step_crash",
        "claude",
        "in a run-time plan, `write_report` commits then its process is SIGKILLed (mapped task)",
        dag_id=AUTOMATION,
        faults=(_f("write_report", "crash_after_commit"),),
        executors=BOTH,
    ),
    Fault(
        "automation_permanent_failure",
        "claude",
        "in a run-time plan, `notify` fails on every try: the run fails, `write_report` is undone",
        dag_id=AUTOMATION,
        faults=(_f("notify", "permanent_failure", None),),
        expected="failed",
        executors=BOTH,
    ),
    Fault(
        "scheduler_killed_mid_run",
        "infrastructure",
        "the scheduler (with its LocalExecutor workers) is SIGKILLed and restarted while `write_report` runs",
        faults=(_f("write_report", "hold", release="phase2"),),
        inject="scheduler_restart",
        phase=2,
    ),
    Fault(
        "db_connections_dropped",
        "infrastructure",
        "every metadata-DB connection is terminated 3 times, 1.5 s apart, while `write_report` runs",
        faults=(_f("write_report", "hold", release="phase3"),),
        inject="db_drop",
        phase=3,
        executors=BOTH,
    ),
    Fault(
        "scheduler_restarted_mid_run",
        "infrastructure",
        "the scheduler alone is SIGKILLed and restarted while `write_report` runs; the Celery workers go on",
        faults=(_f("write_report", "hold", release="phase2"),),
        inject="scheduler_restart",
        phase=2,
        executors=(CELERY,),
    ),
    Fault(
        "celery_worker_sigkill_mid_step",
        "infrastructure",
        "the Celery worker running `notify` is SIGKILLed with its task processes before the write, restarted later",
        faults=(_f("notify", "sigkill_worker"),),
        inject="celery_worker_kill",
        phase=4,
        executors=(CELERY,),
    ),
    Fault(
        "celery_worker_killed_after_commit",
        "infrastructure",
        "the Celery worker running `notify` is SIGKILLed with its task processes after the write committed",
        faults=(_f("notify", "sigkill_worker_after_commit"),),
        inject="celery_worker_kill",
        phase=5,
        executors=(CELERY,),
    ),
    Fault(
        "redis_restarted_mid_run",
        "infrastructure",
        "every worker slot holds a `write_report`, more wait in the broker; Redis (no persistence) is restarted",
        faults=(_f("write_report", "hold", release="phase6"),),
        inject="redis_restart",
        phase=6,
        executors=(CELERY,),
        min_runs=6,
    ),
)


def faults_for(executor: str, only: Iterable[str] = ()) -> list[Fault]:
    """The faults measured on ``executor`` (all of them, or those named in ``only``)."""
    wanted = set(only)
    return [f for f in FAULTS if executor in f.executors and (not wanted or f.name in wanted)]


def ci_faults(executor: str) -> list[str]:
    """The faults the CI size measures on ``executor``: all on LocalExecutor; on Celery, what Celery changes.

    The step, Claude and database faults behave the same on both executors (the LocalExecutor suite
    covers them in CI); on Celery the CI size keeps the baseline and the Celery-only faults (a
    worker killed, the broker restarted, the scheduler restarted beside running workers).
    ``scripts/faults.sh N --executor celery`` measures every fault.
    """
    mine = faults_for(executor)
    if executor != CELERY:
        return [f.name for f in mine]
    return [f.name for f in mine if f.executors == (CELERY,) or f.name == "none"]
