"""The fault-injection suite: faults injected into a real Airflow on PostgreSQL, side effects counted.

Promises measured (figures in docs/reliability.md; rerun with ``scripts/faults.sh N``):

- every run reaches the terminal state its fault calls for;
- no side effect is performed twice for one step of one run (the external ledger says so);
- no step output is lost (a succeeded step has its output; an effect has a succeeded step);
- every failed run undoes its finished mutating steps, in reverse order.
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from .harness import FAULTS, Environment, Run, measure, run_phase, table, totals

pytestmark = [pytest.mark.faults, pytest.mark.e2e]


def machine() -> str:
    cpus = len(os.sched_getaffinity(0))
    return f"{platform.system()} {platform.machine()}, {cpus} CPUs, Python {platform.python_version()}"


def test_faults_keep_effects_once_and_outputs_whole(
    fault_environment: Environment, request: pytest.FixtureRequest
) -> None:
    env = fault_environment
    runs_per_fault = int(request.config.getoption("--runs-per-fault"))
    only = list(request.config.getoption("--fault"))
    unknown = sorted(set(only) - {f.name for f in FAULTS})
    assert not unknown, f"unknown faults {unknown}; known: {[f.name for f in FAULTS]}"
    timings: dict[str, float] = {"airflow start (incl. migrate)": sum(env.airflow.timings.values())}
    for dag_id in sorted({f.dag_id for f in FAULTS if not only or f.name in only}):
        env.airflow.wait_for_dag(dag_id, timeout=180)
    runs: list[Run] = []
    for phase, name in ((1, "step and Claude faults"), (2, "scheduler killed"), (3, "DB connections dropped")):
        started = time.monotonic()
        runs += run_phase(env, phase, runs_per_fault, timeout=300 + 300 * runs_per_fault, only=only)
        timings[f"phase {phase}: {name}"] = time.monotonic() - started
    started = time.monotonic()
    for run in runs:
        measure(env, run)
    timings["measurement"] = time.monotonic() - started

    figures = table(runs)
    header = (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}; "
        f"{runs_per_fault} run(s) per fault, PostgreSQL metadata DB, LocalExecutor."
    )
    report = "\n".join(
        [
            header,
            "",
            figures,
            "",
            "Timings: " + "; ".join(f"{k} {v:.0f}s" for k, v in timings.items()),
            "Component restarts by the harness: " + (json.dumps(dict(env.restarts)) if env.restarts else "none"),
        ]
    )
    print("\n" + report)
    print("\n".join(env.events))
    target = request.config.getoption("--faults-table")
    if target:
        Path(target).write_text(report + "\n")
    problems = [f"{r.fault.name}#{r.index} {r.run_id}: {p}" for r in runs for p in r.problems]
    all_runs = totals(runs)
    assert all_runs["duplicates"] == 0, "\n".join(problems)
    assert all_runs["lost"] == 0, "\n".join(problems)
    assert all_runs["right"] == all_runs["runs"], "\n".join(problems)
    assert all_runs["compensated"] == all_runs["compensable"], "\n".join(problems)
    assert not problems, "\n".join(problems)
