"""Benchmark 4: what an automation's own machinery costs in a real Airflow, against a compiled plan.

One real Airflow (the test harness ``AirflowInstance``: dag-processor, scheduler, api-server and
a triggerer, LocalExecutor, SQLite) parses a temporary DAG folder holding:

- **compiled**: a reviewed 5-step plan file over the example catalog
  ``airflow_claude.examples.orders`` (``dags/plans/nightly_orders_report.json`` without its
  ``refresh_daily_summary`` step and without its schedule, so no scheduled run gets in the way),
  loaded with ``load_plan_dags``: one task per step plus the factory's saga group;
- **automation**: ``claude_automation("bench_automation", ...)`` with ``require_approval=False``,
  whose Claude is the package's offline ``FakeClaude`` (a real HTTP server speaking the Messages
  API, on this machine). It answers ``submit_plan`` with the SAME 5 steps and ``submit_review``
  with ``done``. So both contenders run the same tool calls over the same data; what the
  automation adds is its own work: the planning and review tasks (each a model call to the
  fake), approval, commit, the step scaffolding, the saga and the report.

Both contenders are triggered with a logical date (the plan reads ``run.data_interval_*``); the
DAGs have no schedule, so each run's interval is its logical date's day, the same day for both
in a pair. One warm-up pair (not counted: first imports, the seeded orders database) comes
first; then ``--pairs`` interleaved pairs, the order alternating (compiled first in even pairs).

Per run it records:

- **wall**: from just before the trigger call to the run's ``end_date`` (both read from this
  machine's clock), and the run's own ``start_date`` -> ``end_date``, from the REST API;
- **created** task instances: every TI of the run, a mapped task counted once per map index
  (``/api/v2/dags/{dag}/dagRuns/{run}/taskInstances``, paged);
- **executed** task instances: TIs with a non-empty ``hostname``. Airflow sets ``hostname`` only
  when a task process starts on a worker (the execution API's ``ti_run``). ``start_date`` would
  not do: the scheduler also stamps it on TIs it skips by trigger rule and on ``EmptyOperator``
  TIs it marks successful without running them;
- **deferrals**: tries whose log says the task deferred (each one costs a second worker
  process when it resumes), read after the run so reading does not disturb it, and **retried**
  TIs (more than one try: none is expected, every tool call succeeds). For a failed or retried
  run the report adds the scheduler's log lines about it and the tails of the task logs.

The headline is the ratio automation / compiled of the median walls (and the median of the
per-pair ratios): on a shared 2-core machine absolute times swing with other jobs, a ratio of
interleaved runs much less.

The same script runs on an older checkout (``PYTHONPATH=<checkout>``): it imports the harness
from ``tests/harness`` when that exists, else from ``airflow_claude.testing.airflow_instance``.

Run: ``.venv/bin/python benchmarks/bench_automation_overhead.py [--pairs 3] [--warmup 1] [--home DIR]
[--json-out FILE]`` (5-25 minutes, depending on the machine's load).
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
# The checkout this script sits in is the one benchmarked: its package and its harness, here and in Airflow.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
COMPILED = "bench_compiled_plan"
AUTOMATION = "bench_automation"
CONTENDERS = (COMPILED, AUTOMATION)
MODEL = "claude-sonnet-5-5"
GOAL = "Report the run's day of paid orders by region, check their quality, and tell #data-team."
# Fixed logical dates (a day apart per pair), so every tree and every run reads the same seeded days.
FIRST_DAY = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
DROPPED_STEP = "refresh_daily_summary"

DAG_FILE = '''"""Benchmark DAGs: a compiled 5-step plan, and an automation whose offline Claude plans the same."""

from datetime import timedelta
from pathlib import Path

import airflow_claude
from airflow_claude.automation import AutomationSettings, claude_automation
from airflow_claude.examples.orders import catalog
from airflow_claude.factory import load_plan_dags

globals().update(load_plan_dags(Path(__file__).parent / "plans", catalog, retry_delay=timedelta(seconds=5)))

bench_automation = claude_automation(
    "bench_automation",
    catalog=catalog,
    settings=AutomationSettings(
        require_approval=False,
        max_steps=8,
        max_levels=4,
        max_replans=1,
        step_retry_delay=timedelta(seconds=5),
    ),
    description="package: " + airflow_claude.__file__,
)
'''


def bench_steps() -> list[dict[str, Any]]:
    """The 5 steps both contenders run: the nightly report plan without its SQL step."""
    plan = json.loads((ROOT / "dags" / "plans" / "nightly_orders_report.json").read_text(encoding="utf-8"))
    steps = []
    for step in plan["steps"]:
        if step["id"] == DROPPED_STEP:
            continue
        step = dict(step)
        if "depends_on" in step:
            step["depends_on"] = [d for d in step["depends_on"] if d != DROPPED_STEP]
        steps.append(step)
    return steps


def bench_plan() -> dict[str, Any]:
    """The compiled contender's plan file: the 5 steps, no schedule (manual runs only)."""
    return {
        "schema_version": "1",
        "id": COMPILED,
        "goal": GOAL,
        "provenance": {"created_by": "human:benchmark", "created_at": "2026-12-02T00:00:00Z"},
        "steps": bench_steps(),
    }


def write_dag_folder(folder: Path) -> None:
    (folder / "plans").mkdir(parents=True, exist_ok=True)
    (folder / "plans" / f"{COMPILED}.json").write_text(json.dumps(bench_plan(), indent=2) + "\n", encoding="utf-8")
    (folder / "bench_dags.py").write_text(DAG_FILE, encoding="utf-8")


def answer(body: Mapping[str, Any]) -> dict[str, Any]:
    """The offline Claude: the same 5 steps for any planning request, ``done`` for any review."""
    from airflow_claude.testing.fake_claude import forced_tool_name

    if forced_tool_name(body) == "submit_plan":
        summary = "Read the run's day of paid orders, check them, aggregate by region, report, tell the team."
        return {"tool_use": {"name": "submit_plan", "input": {"summary": summary, "steps": bench_steps()}}}
    verdict = {"verdict": "done", "reason": "every step succeeded", "summary": "the report is written"}
    return {"tool_use": {"name": "submit_review", "input": verdict}}


def checkout_version() -> str:
    """``git describe`` of the benchmarked checkout (``-dirty`` with uncommitted changes)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True, check=False
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def import_harness() -> tuple[type, str]:
    """``AirflowInstance`` from this checkout: ``tests/harness`` now, ``airflow_claude.testing`` before."""
    try:
        from tests.harness.airflow_instance import AirflowInstance

        return AirflowInstance, "tests.harness.airflow_instance"
    except ImportError:
        from airflow_claude.testing.airflow_instance import AirflowInstance  # type: ignore[no-redef]

        return AirflowInstance, "airflow_claude.testing.airflow_instance"


# ---------------------------------------------------------------------------- measurement


@dataclass
class RunRecord:
    dag_id: str
    pair: int  # -1 for warm-up runs
    run_id: str
    state: str
    wall_s: float  # trigger call -> the run's end_date
    poll_wall_s: float  # trigger call -> this script saw the final state
    run_s: float  # the run's start_date -> end_date
    queued_s: float  # trigger call -> the run's start_date
    created: int
    executed: int
    skipped: int
    deferrals: int  # deferrals over every try of every executed TI
    retried: int  # executed TIs that needed more than one try
    task_seconds: float  # sum of executed TIs' start -> end
    by_task: dict[str, int] = field(default_factory=dict)
    not_successful: dict[str, str] = field(default_factory=dict)
    failure_logs: dict[str, str] = field(default_factory=dict)
    scheduler_lines: list[str] = field(default_factory=list)


def _ts(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _seg(value: str | int) -> str:
    return quote(str(value), safe="")


def task_instances(instance: Any, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Every TI of a run (mapped instances one each), paging through the REST API."""
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = instance.get(
            f"/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances", params={"limit": 100, "offset": offset}
        )
        chunk = page.get("task_instances", [])
        items.extend(chunk)
        offset += len(chunk)
        if not chunk or offset >= int(page.get("total_entries", 0)):
            return items


def executed(ti: Mapping[str, Any]) -> bool:
    """Ran on a worker: Airflow sets ``hostname`` when a task process starts, and only then."""
    return bool(ti.get("hostname"))


def ti_label(ti: Mapping[str, Any]) -> str:
    index = ti.get("map_index", -1)
    return ti["task_id"] if index is None or index < 0 else f"{ti['task_id']}[{index}]"


def count_tis(tis: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Created, executed and skipped TIs, summed executed seconds, and TIs per task id."""
    ran = [ti for ti in tis if executed(ti)]
    seconds = 0.0
    for ti in ran:
        start, end = _ts(ti.get("start_date")), _ts(ti.get("end_date"))
        if start and end:
            seconds += (end - start).total_seconds()
    return {
        "created": len(tis),
        "executed": len(ran),
        "skipped": sum(1 for ti in tis if ti.get("state") == "skipped"),
        "task_seconds": seconds,
        "by_task": dict(sorted(Counter(ti["task_id"] for ti in tis).items())),
    }


#: what the task runner logs when a task defers (Airflow 3.3: ``task_runner._defer_task``)
DEFER_MARKER = "Pausing task as DEFERRED"


def deferred_in_log(log: str) -> bool:
    return DEFER_MARKER in log


def wait_terminal(instance: Any, dag_id: str, run_id: str, timeout: float, poll: float = 0.5) -> str:
    deadline = time.monotonic() + timeout
    while True:
        state = instance.dag_run(dag_id, run_id).get("state")
        if state in ("success", "failed"):
            return str(state)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{dag_id}/{run_id} still {state!r} after {timeout:.0f}s")
        time.sleep(poll)


def one_run(instance: Any, dag_id: str, pair: int, logical_date: datetime, timeout: float) -> RunRecord:
    conf = {"goal": GOAL} if dag_id == AUTOMATION else {}
    triggered_at = datetime.now(UTC)
    t0 = time.monotonic()
    run_id = instance.trigger(dag_id, conf=conf, logical_date=logical_date)
    state = wait_terminal(instance, dag_id, run_id, timeout)
    poll_wall = time.monotonic() - t0
    run = instance.dag_run(dag_id, run_id)
    start, end = _ts(run.get("start_date")), _ts(run.get("end_date"))
    tis = task_instances(instance, dag_id, run_id)
    counts = count_tis(tis)
    deferrals = retried = 0
    failure_logs: dict[str, str] = {}
    not_ok = {ti_label(ti): str(ti.get("state")) for ti in tis if ti.get("state") not in ("success", "skipped")}
    for ti in tis:
        if not executed(ti):
            continue
        tries = max(int(ti.get("try_number") or 1), 1)
        retried += tries > 1
        for try_number in range(1, tries + 1):
            try:
                log = instance.task_log(dag_id, run_id, ti["task_id"], try_number, map_index=ti.get("map_index", -1))
            except Exception as exc:  # a missing log must not lose the measurement
                log = f"(log unavailable: {exc!r})"
            deferrals += deferred_in_log(log)
            if ti_label(ti) in not_ok or ti.get("state") == "failed" or tries > 1:
                failure_logs[f"{ti_label(ti)} try {try_number}"] = log[-4000:]
    scheduler_lines = scheduler_evidence(instance, run_id) if state != "success" or retried else []
    return RunRecord(
        dag_id=dag_id,
        pair=pair,
        run_id=run_id,
        state=state,
        wall_s=(end - triggered_at).total_seconds() if end else poll_wall,
        poll_wall_s=poll_wall,
        run_s=(end - start).total_seconds() if start and end else float("nan"),
        queued_s=(start - triggered_at).total_seconds() if start else float("nan"),
        created=counts["created"],
        executed=counts["executed"],
        skipped=counts["skipped"],
        deferrals=deferrals,
        retried=retried,
        task_seconds=counts["task_seconds"],
        by_task=counts["by_task"],
        not_successful=not_ok,
        failure_logs=failure_logs,
        scheduler_lines=scheduler_lines,
    )


#: scheduler log lines worth showing for a failed or retried run
EVIDENCE = (
    "deadlock",
    "changed externally",
    "state attribute is",
    "try_number mismatch",
    "Marking run",
    "UP_FOR_RETRY",
)


def scheduler_evidence(instance: Any, run_id: str, limit: int = 30) -> list[str]:
    """The scheduler's lines about this run that explain a failure or a retry (from its component log)."""
    try:
        text = Path(instance.log_path("scheduler")).read_text(encoding="utf-8", errors="replace")
    except (AttributeError, OSError):
        return []
    lines = [line[:600] for line in text.splitlines() if run_id in line and any(e in line for e in EVIDENCE)]
    return lines[-limit:]


def pair_order(pair: int) -> tuple[str, str]:
    """Compiled first in even pairs, the automation first in odd ones."""
    return CONTENDERS if pair % 2 == 0 else (AUTOMATION, COMPILED)


def summarize(records: Iterable[RunRecord]) -> dict[str, Any]:
    """Medians per contender over the measured pairs, and the automation/compiled ratios."""
    measured = [r for r in records if r.pair >= 0]
    out: dict[str, Any] = {}
    for dag_id in CONTENDERS:
        mine = [r for r in measured if r.dag_id == dag_id]
        if not mine:
            continue
        out[dag_id] = {
            "runs": len(mine),
            "states": dict(Counter(r.state for r in mine)),
            **{
                f"{name}_median": statistics.median(getattr(r, name) for r in mine)
                for name in (
                    "wall_s",
                    "poll_wall_s",
                    "run_s",
                    "queued_s",
                    "task_seconds",
                    "created",
                    "executed",
                    "skipped",
                    "deferrals",
                    "retried",
                )
            },
        }
    if COMPILED in out and AUTOMATION in out:
        by_pair: dict[int, dict[str, RunRecord]] = {}
        for r in measured:
            by_pair.setdefault(r.pair, {})[r.dag_id] = r
        paired = [p[AUTOMATION].wall_s / p[COMPILED].wall_s for p in by_pair.values() if len(p) == 2]
        out["ratio_wall"] = out[AUTOMATION]["wall_s_median"] / out[COMPILED]["wall_s_median"]
        out["ratio_wall_paired_median"] = statistics.median(paired) if paired else float("nan")
        out["ratio_wall_paired"] = paired
        out["ratio_run"] = out[AUTOMATION]["run_s_median"] / out[COMPILED]["run_s_median"]
        out["ratio_created"] = out[AUTOMATION]["created_median"] / out[COMPILED]["created_median"]
        out["ratio_executed"] = out[AUTOMATION]["executed_median"] / out[COMPILED]["executed_median"]
    return out


def report(summary: Mapping[str, Any], records: Sequence[RunRecord], meta: Mapping[str, Any]) -> str:
    lines = [
        f"Automation overhead: {meta['package']} at {meta['checkout']} (harness {meta['harness']}), "
        f"{meta['pairs']} pairs after {meta['warmup']} warm-up pair(s), triggerer: {meta['with_triggerer']}",
        "",
        f"{'run':<28} {'pair':>4} {'state':<8} {'wall s':>7} {'run s':>6} {'queue s':>7} "
        f"{'created':>7} {'executed':>8} {'skipped':>7} {'defer':>5} {'retried':>7}",
    ]
    for r in records:
        lines.append(
            f"{r.dag_id:<28} {r.pair:>4} {r.state:<8} {r.wall_s:>7.1f} {r.run_s:>6.1f} {r.queued_s:>7.1f} "
            f"{r.created:>7} {r.executed:>8} {r.skipped:>7} {r.deferrals:>5} {r.retried:>7}"
        )
    lines.append("")
    for dag_id in CONTENDERS:
        s = summary.get(dag_id)
        if not s:
            continue
        lines.append(
            f"{dag_id:<22} median wall {s['wall_s_median']:.1f} s (run {s['run_s_median']:.1f} s, queued "
            f"{s['queued_s_median']:.1f} s, task time {s['task_seconds_median']:.1f} s), TIs created "
            f"{s['created_median']:g}, executed {s['executed_median']:g}, skipped {s['skipped_median']:g}, "
            f"deferrals {s['deferrals_median']:g}, retried {s['retried_median']:g}; states {s['states']}"
        )
    if "ratio_wall" in summary:
        paired = ", ".join(f"{x:.2f}" for x in summary["ratio_wall_paired"])
        lines.append(
            f"ratio automation/compiled: wall {summary['ratio_wall']:.2f}x (median of per-pair ratios "
            f"{summary['ratio_wall_paired_median']:.2f}x: {paired}), "
            f"run {summary['ratio_run']:.2f}x, created TIs {summary['ratio_created']:.2f}x, "
            f"executed TIs {summary['ratio_executed']:.2f}x"
        )
    shapes = {r.dag_id: r.by_task for r in records if r.pair >= 0}
    for dag_id, by_task in shapes.items():
        lines.append(f"  {dag_id} TIs per task: " + ", ".join(f"{t} x{n}" if n > 1 else t for t, n in by_task.items()))
    for r in records:
        if r.state != "success" or r.not_successful or r.retried:
            lines.append(
                f"!! {r.dag_id} {r.run_id}: {r.state}; retried TIs {r.retried}; not successful: {r.not_successful}"
            )
            lines.extend(f"   scheduler: {line}" for line in r.scheduler_lines)
            for label, log in r.failure_logs.items():
                lines.append(f"---- log of {label} (tail) ----\n{log[-1500:]}")
    return "\n".join(lines)


def run(pairs: int, warmup: int, timeout: float, home: Path | None = None) -> dict[str, Any]:
    import airflow_claude
    from airflow_claude.examples.orders import orders_connection_env
    from airflow_claude.testing import FakeClaude

    harness_cls, harness_name = import_harness()
    accepts_triggerer = "with_triggerer" in inspect.signature(harness_cls).parameters
    with tempfile.TemporaryDirectory(prefix="bench_automation_") as tmp:
        base = Path(home) if home else Path(tmp)
        dags = base / "dags"
        write_dag_folder(dags)
        fake = FakeClaude()
        fake.responder = answer
        records: list[RunRecord] = []
        meta: dict[str, Any] = {
            "package": str(Path(airflow_claude.__file__).resolve().parent),
            "harness": harness_name,
            "checkout": checkout_version(),
            "with_triggerer": accepts_triggerer,
            "pairs": pairs,
            "warmup": warmup,
            "executed_criterion": "non-empty hostname (set when a task process starts on a worker)",
        }
        with fake:
            conn = {"conn_type": "anthropic", "host": fake.url, "password": "bench-key", "extra": {"model": MODEL}}
            env = {
                "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(conn),
                "AIRFLOW_CLAUDE_DEMO_DIR": str(base / "demo"),
                **orders_connection_env(base / "demo" / "orders.db"),
            }
            kwargs: dict[str, Any] = {"home": base / "home", "dags_folder": dags, "extra_env": env}
            if accepts_triggerer:
                kwargs["with_triggerer"] = True
            instance = harness_cls(**kwargs)
            print(f"Starting Airflow in {base / 'home'} ({meta['package']}) ...", flush=True)
            instance.start()
            try:
                for dag_id in CONTENDERS:
                    instance.wait_for_dag(dag_id, timeout=180)
                    instance.unpause(dag_id)
                meta["dag_processor_package"] = instance.dag(AUTOMATION).get("description")
                print(f"DAGs up; the dag-processor imported {meta['dag_processor_package']}", flush=True)
                for day, pair in enumerate([*[-1] * warmup, *range(pairs)]):
                    order = pair_order(pair if pair >= 0 else 0)
                    for dag_id in order:
                        record = one_run(instance, dag_id, pair, FIRST_DAY + timedelta(days=day), timeout)
                        records.append(record)
                        print(
                            f"  pair {pair:>2} {dag_id:<22} {record.state:<8} wall {record.wall_s:6.1f} s, "
                            f"created {record.created}, executed {record.executed}, deferrals {record.deferrals}, "
                            f"retried {record.retried}",
                            flush=True,
                        )
            finally:
                instance.stop()
    summary = summarize(records)
    return {"meta": meta, "summary": summary, "records": [asdict(r) for r in records]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3, help="measured pairs (compiled run + automation run)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up pairs, not counted")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one run may take")
    parser.add_argument("--home", type=Path, default=None, help="keep the instance's files here (default: a temp dir)")
    parser.add_argument("--json-out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    results = run(args.pairs, args.warmup, args.timeout, args.home)
    records = [RunRecord(**r) for r in results["records"]]
    print()
    print(report(results["summary"], records, results["meta"]))
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    failed = [r for r in records if r.state != "success"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
