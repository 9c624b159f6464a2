"""The body of the fault suite, the same on every deployment: run the phases, measure, print, assert."""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from .faults import CELERY, ci_faults, faults_for
from .figures import measure, table, totals
from .harness import Environment, Run, run_phase

PHASES: dict[int, str] = {
    1: "step and Claude faults",
    2: "scheduler killed",
    3: "DB connections dropped",
    4: "Celery worker killed mid-step",
    5: "Celery worker killed after commit",
    6: "Redis restarted",
}


def machine() -> str:
    cpus = len(os.sched_getaffinity(0))
    return f"{platform.system()} {platform.machine()}, {cpus} CPUs, Python {platform.python_version()}"


def run_suite(env: Environment, config: pytest.Config, deployment: str) -> None:
    """Every fault of ``env.executor``'s deployment, ``--runs-per-fault`` runs each; figures to ``--faults-table``."""
    runs_per_fault = int(config.getoption("--runs-per-fault"))
    only = list(config.getoption("--fault"))
    mine = faults_for(env.executor)
    unknown = sorted(set(only) - {f.name for f in mine})
    assert not unknown, f"unknown faults {unknown} on {env.executor}; known: {[f.name for f in mine]}"
    if not only and not config.getoption("--every-fault"):
        only = ci_faults(env.executor)
    timings: dict[str, float] = {"airflow start (incl. migrate)": sum(env.airflow.timings.values())}
    for dag_id in sorted({f.dag_id for f in faults_for(env.executor, only)}):
        env.airflow.wait_for_dag(dag_id, timeout=180)
    runs: list[Run] = []
    for phase, name in PHASES.items():
        started = time.monotonic()
        done = run_phase(env, phase, runs_per_fault, timeout=300 + 300 * runs_per_fault, only=only)
        if done:
            timings[f"phase {phase}: {name}"] = time.monotonic() - started
        runs += done
    started = time.monotonic()
    for run in runs:
        measure(env, run)
    timings["measurement"] = time.monotonic() - started
    if env.executor == CELERY:
        from .on_celery import tries_by_worker

        env.details += [tries_by_worker(env, r) for r in runs if r.fault.inject == "celery_worker_kill"]

    header = (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}; "
        f"{runs_per_fault} run(s) per fault, PostgreSQL metadata DB, {deployment}."
    )
    report = "\n".join(
        [
            header,
            "",
            table(runs),
            "",
            *[f"- {line}" for line in env.details],
            "Timings: " + "; ".join(f"{k} {v:.0f}s" for k, v in timings.items()),
            "Component restarts by the harness: " + (json.dumps(dict(env.restarts)) if env.restarts else "none"),
        ]
    )
    print("\n" + report)
    print("\n".join(env.events))
    target = config.getoption("--faults-table")
    if target:
        Path(target).write_text(report + "\n")
    problems = [f"{r.fault.name}#{r.index} {r.run_id}: {p}" for r in runs for p in r.problems]
    all_runs = totals(runs)
    assert all_runs["duplicates"] == 0, "\n".join(problems)
    assert all_runs["lost"] == 0, "\n".join(problems)
    assert all_runs["right"] == all_runs["runs"], "\n".join(problems)
    assert all_runs["compensated"] == all_runs["compensable"], "\n".join(problems)
    assert not problems, "\n".join(problems)
