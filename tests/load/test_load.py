"""Load on a Celery deployment: N compiled runs and M automation runs of a 20-step plan, all at once.

Promises measured (figures in docs/scale.md; rerun with ``scripts/load.sh N``): every run reaches
success with its 20 steps; no effect is performed twice (external ledger); no step output is lost.
Reported: runs per minute, p50/p95 step queue delay, the scheduler loop time.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from . import plan
from .measure import AUTOMATION
from .runner import collect, trigger_all, wait_all
from .table import render

pytestmark = [pytest.mark.load, pytest.mark.e2e]


def test_concurrent_runs_succeed_once_each(load_environment, request: pytest.FixtureRequest) -> None:  # type: ignore[no-untyped-def]
    env = load_environment
    size = env.size
    timings = {"airflow start (incl. migrate)": sum(env.airflow.timings.values())}
    for dag_id in (plan.COMPILED, AUTOMATION):
        env.airflow.wait_for_dag(dag_id, timeout=240)
    started = time.time()
    runs = trigger_all(env.airflow, size.compiled_runs, size.automation_runs)
    timings["triggering"] = time.time() - started
    wait_all(env.airflow, runs, timeout=600 + 30 * size.runs)
    ended = time.time()
    timings["load"] = ended - started
    t0 = time.monotonic()
    figures = collect(env, runs, started, ended)
    timings["measurement"] = time.monotonic() - t0
    report = render(figures, size, timings)
    print("\n" + report)
    target = request.config.getoption("--load-table")
    if target:
        Path(target).write_text(report + "\n")
    problems = [f"{r.dag_id} {r.run_id}: {p}" for r in runs for p in r.problems]
    assert figures.total("duplicates") == 0, "\n".join(problems)
    assert figures.total("lost") == 0, "\n".join(problems)
    assert figures.total("right") == len(runs), "\n".join(problems)
    assert not problems, "\n".join(problems)
    assert figures.loop_ms, "the scheduler sent no scheduler_loop_duration to the StatsD receiver"
    assert set(figures.per_worker) == set(env.airflow.celery_worker_names), figures.per_worker  # both workers ran tasks
