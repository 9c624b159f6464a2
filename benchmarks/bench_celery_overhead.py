"""Benchmark 6: a 20-step compiled plan against the same graph of hand-written PythonOperators, on Celery.

One real Airflow on the CeleryExecutor (the test harness's ``AirflowInstance(executor="celery")``:
scheduler, dag-processor, api-server, triggerer, two Celery workers, a private Redis, PostgreSQL for
the metadata DB and the Celery result backend) parses a temporary DAG folder holding:

- **compiled**: the load suite's 20-step plan (``tests/load/plan.py``: four regions read, checked,
  summed and reported, a combined total, a summary report, a notice, a dashboard; 7 mutating
  steps) as the plan file ``plans/bench_celery_plan.json``, loaded with ``load_plan_dags``;
- **hand-written**: ``bench_celery_hand``, the same 20 tasks and edges as plain ``PythonOperator``s
  calling the same tool functions (``tests/load/dags/load_tools.py``) with the arguments pulled
  from upstream XComs, the same retries, retry delay and timeouts. Its mutating calls get an
  idempotency key of its own making, so both write the same effects to the same ledger.

The tools do little (100 rows each), so the ratio shows what the package adds per step: argument
validation, the idempotency key, the step ledger in the task state store, the provenance XCom,
records and masking. After ``--warmup`` pairs (not counted), ``--pairs`` pairs run one at a time,
the order alternating (A B, B A, ...). Per run: **wall** (just before the trigger call -> the run's
``end_date``), **tasks** (first task ``start_date`` -> last task ``end_date``), the summed task time
and the median step queue delay (``start_date - queued_when``). The headline is the ratio of the
medians compiled / hand-written (goal: 1.05x or less) and the median of the per-pair ratios.

Run: ``.venv/bin/python benchmarks/bench_celery_overhead.py [--pairs 5] [--warmup 1] [--json-out FILE]``
(needs PostgreSQL on 127.0.0.1:5432, user postgres, and ``redis-server``; 5-15 minutes).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

COMPILED = "bench_celery_plan"
HAND = "bench_celery_hand"
CONTENDERS = (COMPILED, HAND)
TARGET = 1.05

COMPILED_FILE = '''"""Benchmark DAG: the 20-step plan compiled by the package."""

from datetime import timedelta
from pathlib import Path

from load_tools import catalog

from airflow_claude.factory import load_plan_dags

globals().update(load_plan_dags(Path(__file__).parent / "plans", catalog, retry_delay=timedelta(seconds=2)))
'''

HAND_FILE = '''"""Benchmark DAG: the 20-step plan's graph written by hand, one PythonOperator per step."""

import hashlib
import inspect
import json
from datetime import datetime, timedelta
from pathlib import Path

import load_tools
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from airflow_claude.catalog import ToolContext

PLAN = json.loads((Path(__file__).parent / "plans" / "bench_celery_plan.json").read_text())


def resolve(value, ti):
    """Upstream outputs from XCom, where the plan has a reference."""
    if isinstance(value, dict) and set(value) == {"$ref"}:
        _, step, _, *path = value["$ref"].split(".")
        out = ti.xcom_pull(task_ids=step)
        for key in path:
            out = out[key]
        return out
    if isinstance(value, list):
        return [resolve(v, ti) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, ti) for k, v in value.items()}
    return value


def call(tool, args, ti, dag_run, **_):
    fn = getattr(load_tools, tool)
    kwargs = resolve(args, ti)
    if "context" in inspect.signature(fn).parameters:
        key = hashlib.sha256(f"{ti.dag_id}/{dag_run.run_id}/{ti.task_id}".encode()).hexdigest()
        kwargs["context"] = ToolContext(
            idempotency_key=key, dag_id=ti.dag_id, run_id=dag_run.run_id, step_id=ti.task_id,
            plan_id=PLAN["id"], plan_hash="", try_number=ti.try_number, log=None,
        )
    return fn(**kwargs).model_dump(mode="json")


with DAG(
    dag_id="bench_celery_hand", schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
    default_args={"retry_delay": timedelta(seconds=2)},
):
    tasks = {}
    for step in PLAN["steps"]:
        tool = getattr(load_tools, step["tool"])
        tasks[step["id"]] = PythonOperator(
            task_id=step["id"], python_callable=call, op_kwargs={"tool": step["tool"], "args": step["args"]},
            retries=tool.default_retries, execution_timeout=timedelta(seconds=tool.max_timeout_seconds),
        )
    for step in PLAN["steps"]:
        for upstream in step.get("depends_on", []):
            tasks[upstream] >> tasks[step["id"]]
'''


def write_dag_folder(folder: Path) -> None:
    from tests.load import plan

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "tests" / "load" / "dags" / "load_tools.py", folder / "load_tools.py")
    (folder / ".airflowignore").write_text("load_tools.py\n")
    plan.write_plan(folder / "plans", COMPILED)
    (folder / "bench_celery_compiled.py").write_text(COMPILED_FILE, encoding="utf-8")
    (folder / "bench_celery_hand.py").write_text(HAND_FILE, encoding="utf-8")


# ---------------------------------------------------------------------------- measurement


@dataclass
class RunRecord:
    dag_id: str
    pair: int  # -1 for warm-up runs
    run_id: str
    state: str
    wall_s: float  # trigger call -> the run's end_date
    tasks_s: float  # first task start_date -> last task end_date
    task_seconds: float  # summed start -> end of every task
    queue_delay_s: float  # median start_date - queued_when of the run's tasks
    executed: int
    retried: int
    parse_s: float = float("nan")  # median DAG file parse in the task process (its log: dag_file_parse_ms)
    after_parse_s: float = float("nan")  # median parse done -> the task's last log line (execute and after)
    tool_s: float = float("nan")  # median tool call (compiled steps' step.finished duration_s)


def _ts(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def record_of(
    dag_id: str, pair: int, run: Mapping[str, Any], tis: Sequence[Mapping[str, Any]], triggered: datetime
) -> RunRecord:
    """One run's figures from its DAG run and task instances (REST API rows)."""
    ran = [ti for ti in tis if ti.get("hostname")]
    starts = [s for ti in ran if (s := _ts(ti.get("start_date")))]
    ends = [e for ti in ran if (e := _ts(ti.get("end_date")))]
    seconds: list[float] = []
    delays: list[float] = []
    for ti in ran:
        start, end, queued = _ts(ti.get("start_date")), _ts(ti.get("end_date")), _ts(ti.get("queued_when"))
        if start and end:
            seconds.append((end - start).total_seconds())
        if start and queued and start >= queued:
            delays.append((start - queued).total_seconds())
    end = _ts(run.get("end_date"))
    return RunRecord(
        dag_id=dag_id,
        pair=pair,
        run_id=str(run["dag_run_id"]),
        state=str(run.get("state")),
        wall_s=(end - triggered).total_seconds() if end else float("nan"),
        tasks_s=(max(ends) - min(starts)).total_seconds() if starts and ends else float("nan"),
        task_seconds=sum(seconds),
        queue_delay_s=statistics.median(delays) if delays else float("nan"),
        executed=len(ran),
        retried=sum(1 for ti in ran if int(ti.get("try_number") or 1) > 1),
    )


def log_breakdown(entries: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """From one task log's structured entries: parse seconds, parse -> last line, and the tool call."""
    out: dict[str, float] = {}
    parsed_at = last = None
    for entry in entries:
        at = _ts(entry.get("timestamp"))
        last = at or last
        event = str(entry.get("event", ""))
        if event == "Worker startup parse complete" and entry.get("dag_file_parse_ms") is not None:
            out["parse_s"] = float(entry["dag_file_parse_ms"]) / 1000.0
            parsed_at = at
        elif event.startswith("airflow_claude step.finished "):
            try:
                out["tool_s"] = float(json.loads(event.split(" ", 2)[2]).get("duration_s", "nan"))
            except (ValueError, TypeError, AttributeError):  # an unreadable record leaves the figure out
                pass
    if parsed_at and last:
        out["after_parse_s"] = (last - parsed_at).total_seconds()
    return out


def breakdown(instance: Any, dag_id: str, run_id: str, tis: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Medians of ``log_breakdown`` over the run's task instances (first try)."""
    found: dict[str, list[float]] = {}
    for ti in tis:
        if not ti.get("hostname"):
            continue
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{ti['task_id']}/logs/1"
        try:
            body = instance.request(
                "GET", path, params={"full_content": "true"}, headers={"Accept": "application/json"}
            )
        except Exception:  # a missing log must not lose the run's figures
            continue
        content = body.get("content") if isinstance(body, dict) else None
        for name, value in log_breakdown([e for e in content or [] if isinstance(e, Mapping)]).items():
            found.setdefault(name, []).append(value)
    return {name: statistics.median(values) for name, values in found.items()}


def pair_order(pair: int) -> tuple[str, str]:
    """Compiled first in even pairs, the hand-written DAG first in odd ones."""
    return CONTENDERS if pair % 2 == 0 else (HAND, COMPILED)


_FIELDS = (
    "wall_s",
    "tasks_s",
    "task_seconds",
    "queue_delay_s",
    "executed",
    "retried",
    "parse_s",
    "after_parse_s",
    "tool_s",
)


def summarize(records: Sequence[RunRecord]) -> dict[str, Any]:
    """Medians per contender over the measured pairs, the ratios compiled / hand-written."""
    measured = [r for r in records if r.pair >= 0]
    out: dict[str, Any] = {}
    for dag_id in CONTENDERS:
        mine = [r for r in measured if r.dag_id == dag_id]
        if mine:
            out[dag_id] = {
                "runs": len(mine),
                **{f"{f}_median": statistics.median(getattr(r, f) for r in mine) for f in _FIELDS},
            }
            out[dag_id]["states"] = sorted({r.state for r in mine})
    if COMPILED in out and HAND in out:
        pairs: dict[int, dict[str, RunRecord]] = {}
        for r in measured:
            pairs.setdefault(r.pair, {})[r.dag_id] = r
        both = [p for p in pairs.values() if len(p) == 2]
        for name in ("wall_s", "tasks_s", "task_seconds"):
            out[f"ratio_{name}"] = out[COMPILED][f"{name}_median"] / out[HAND][f"{name}_median"]
            per_pair = [p[COMPILED].__dict__[name] / p[HAND].__dict__[name] for p in both]
            out[f"ratio_{name}_paired"] = per_pair
            out[f"ratio_{name}_paired_median"] = statistics.median(per_pair) if per_pair else float("nan")
    return out


def report(summary: Mapping[str, Any], records: Sequence[RunRecord], meta: Mapping[str, Any]) -> str:
    lines = [
        f"Celery overhead: 20-step compiled plan vs hand-written PythonOperators; {meta['pairs']} pairs after "
        f"{meta['warmup']} warm-up pair(s); {meta['deployment']}",
        "",
        f"{'run':<20} {'pair':>4} {'state':<8} {'wall s':>7} {'tasks s':>7} {'task time s':>11} "
        f"{'queue s':>7} {'TIs':>4}",
    ]
    for r in records:
        lines.append(
            f"{r.dag_id:<20} {r.pair:>4} {r.state:<8} {r.wall_s:>7.1f} {r.tasks_s:>7.1f} {r.task_seconds:>11.1f} "
            f"{r.queue_delay_s:>7.2f} {r.executed:>4}"
        )
    lines.append("")
    for dag_id in CONTENDERS:
        s = summary.get(dag_id)
        if s:
            lines.append(
                f"{dag_id:<20} median wall {s['wall_s_median']:.1f} s, tasks {s['tasks_s_median']:.1f} s, task time "
                f"{s['task_seconds_median']:.1f} s, queue delay {s['queue_delay_s_median']:.2f} s, TIs "
                f"{s['executed_median']:g}, retried {s['retried_median']:g}; per task (median): parse "
                f"{s['parse_s_median']:.2f} s, parse done -> last log line {s['after_parse_s_median']:.2f} s, "
                f"tool call {s['tool_s_median']:.3f} s (compiled only); "
                f"states {s['states']}"
            )
    if "ratio_wall_s" in summary:
        paired = ", ".join(f"{x:.2f}" for x in summary["ratio_wall_s_paired"])
        verdict = "met" if summary["ratio_wall_s"] <= TARGET else "NOT met"
        lines.append(
            f"ratio compiled/hand-written: wall {summary['ratio_wall_s']:.3f}x (target <= {TARGET}: {verdict}; "
            f"per pair {summary['ratio_wall_s_paired_median']:.3f}x: {paired}), tasks {summary['ratio_tasks_s']:.3f}x "
            f"(per pair {summary['ratio_tasks_s_paired_median']:.3f}x), summed task time "
            f"{summary['ratio_task_seconds']:.3f}x"
        )
    return "\n".join(lines)


def _wait(instance: Any, dag_id: str, run_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while instance.dag_run(dag_id, run_id).get("state") not in ("success", "failed"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{dag_id}/{run_id} not finished after {timeout:.0f}s")
        time.sleep(0.5)


def one_run(instance: Any, dag_id: str, pair: int, timeout: float) -> RunRecord:
    triggered = datetime.now(UTC)
    run_id = instance.trigger(dag_id)
    _wait(instance, dag_id, run_id, timeout)
    tis = instance.task_instances(dag_id, run_id)
    record = record_of(dag_id, pair, instance.dag_run(dag_id, run_id), tis, triggered)
    for name, value in breakdown(instance, dag_id, run_id, tis).items():
        setattr(record, name, value)
    return record


def run(pairs: int, warmup: int, timeout: float, parallelism: int) -> dict[str, Any]:
    from tests.harness.airflow_instance import AirflowInstance
    from tests.harness.postgres import fresh_database
    from tests.load import effects

    with tempfile.TemporaryDirectory(prefix="bench_celery_") as tmp:
        base = Path(tmp)
        write_dag_folder(base / "dags")
        with fresh_database("bench_celery") as airflow_db, fresh_database("bench_celery_fx") as effects_db:
            effects_url = effects_db.replace("postgresql+psycopg2://", "postgresql://")
            effects.create_schema(effects_url)
            env = {
                effects.DSN_ENV: effects_url,
                "AIRFLOW__CORE__PARALLELISM": str(parallelism),
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            }
            instance = AirflowInstance(
                home=base / "home",
                dags_folder=base / "dags",
                db_url=airflow_db,
                executor="celery",
                celery_workers={"w1": ("default",), "w2": ("default",)},
                celery_concurrency=max(1, parallelism // 2),
                with_triggerer=True,
                extra_env=env,
                startup_timeout=240,
            )
            meta = {
                "pairs": pairs,
                "warmup": warmup,
                "deployment": f"CeleryExecutor, 2 workers x {max(1, parallelism // 2)} slots, parallelism "
                f"{parallelism}, Redis, PostgreSQL, one run at a time",
            }
            records: list[RunRecord] = []
            instance.start()
            try:
                for dag_id in CONTENDERS:
                    instance.wait_for_dag(dag_id, timeout=240)
                for pair in range(-warmup, pairs):
                    for dag_id in pair_order(pair):
                        record = one_run(instance, dag_id, pair if pair >= 0 else -1, timeout)
                        records.append(record)
                        print(
                            f"{record.dag_id:<20} pair {record.pair:>2} {record.state} wall {record.wall_s:.1f} s",
                            flush=True,
                        )
            finally:
                instance.stop()
    summary = summarize(records)
    return {"meta": meta, "summary": summary, "records": [asdict(r) for r in records]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="measured pairs (compiled + hand-written)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up pairs, not counted")
    parser.add_argument("--parallelism", type=int, default=8, help="[core] parallelism; half per Celery worker")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a run may take")
    parser.add_argument("--json-out", type=Path, help="write the results as JSON")
    args = parser.parse_args(argv)
    result = run(args.pairs, args.warmup, args.timeout, args.parallelism)
    records = [RunRecord(**r) for r in result["records"]]
    print(report(result["summary"], records, result["meta"]))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=1, default=str))
    return 0 if all(r.state == "success" for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
