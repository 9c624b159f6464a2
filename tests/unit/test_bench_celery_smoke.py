"""Benchmark 6's offline parts: the DAG folder (the hand-written DAG is the compiled plan's graph), the figures."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_claude.plan.loader import load_plan_file

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> Any:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_celery_overhead
    finally:
        sys.path.remove(str(BENCHMARKS))
    return bench_celery_overhead


def test_hand_written_dag_is_the_compiled_graph(bench: Any, tmp_path: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bench.write_dag_folder(tmp_path)
    sys.path.insert(0, str(tmp_path))  # the DAG files import load_tools from their folder
    try:
        sys.modules.pop("load_tools", None)
        from load_tools import catalog

        assert load_plan_file(tmp_path / "plans" / f"{bench.COMPILED}.json", catalog).ok
        bag = DagBag(str(tmp_path))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("load_tools", None)
    assert not bag.import_errors
    compiled, hand = bag.dags[bench.COMPILED], bag.dags[bench.HAND]
    assert len(compiled.tasks) == len(hand.tasks) == 20  # no saga: none of the load tools is compensable
    for task_id, task in compiled.task_dict.items():
        other = hand.task_dict[task_id]
        assert other.__class__.__name__ == "PythonOperator"
        assert task.upstream_task_ids == other.upstream_task_ids, task_id
        assert (task.retries, task.retry_delay, task.execution_timeout) == (
            other.retries,
            other.retry_delay,
            other.execution_timeout,
        ), task_id


def test_figures_and_ratios(bench: Any) -> None:
    def ti(start: str, end: str, queued: str, tries: int = 1) -> dict[str, Any]:
        day = "2026-12-04T10:00:"
        return {
            "hostname": "w",
            "start_date": day + start + "Z",
            "end_date": day + end + "Z",
            "queued_when": day + queued + "Z",
            "try_number": tries,
        }

    run = {"dag_run_id": "r", "state": "success", "end_date": "2026-12-04T10:00:30Z"}
    tis = [ti("05", "07", "04"), ti("08", "12", "07", 2), {"hostname": "", "state": "skipped"}]
    triggered = bench._ts("2026-12-04T10:00:00Z")
    record = bench.record_of(bench.COMPILED, 0, run, tis, triggered)
    assert (record.wall_s, record.tasks_s, record.task_seconds, record.queue_delay_s) == (30.0, 7.0, 6.0, 1.0)
    assert (record.executed, record.retried) == (2, 1)

    def rec(dag_id: str, pair: int, wall: float) -> Any:
        return bench.RunRecord(dag_id, pair, "r", "success", wall, wall / 2, wall / 4, 0.5, 20, 0)

    records = [rec(bench.HAND, -1, 99.0)]  # warm-up, not counted
    for pair, (c, h) in enumerate([(21.0, 20.0), (22.0, 20.0), (30.0, 25.0)]):
        records += [rec(bench.COMPILED, pair, c), rec(bench.HAND, pair, h)]
    summary = bench.summarize(records)
    assert summary["ratio_wall_s"] == 22.0 / 20.0
    assert summary["ratio_wall_s_paired_median"] == 1.1 and summary[bench.HAND]["runs"] == 3
    assert bench.pair_order(0) == bench.pair_order(1)[::-1]
    text = bench.report(summary, records, {"pairs": 3, "warmup": 1, "deployment": "Celery"})
    assert "ratio compiled/hand-written: wall 1.100x (target <= 1.05: NOT met" in text

    entries = [
        {"timestamp": "2026-12-04T10:00:01Z", "event": "::group::Pre Execute"},
        {"timestamp": "2026-12-04T10:00:02Z", "event": "Worker startup parse complete", "dag_file_parse_ms": 900},
        {"timestamp": "2026-12-04T10:00:03Z", "event": 'airflow_claude step.finished {"duration_s":0.25}'},
        {"timestamp": "2026-12-04T10:00:04.5Z", "event": "Task instance in success state"},
    ]
    assert bench.log_breakdown(entries) == {"parse_s": 0.9, "tool_s": 0.25, "after_parse_s": 2.5}
    assert bench.log_breakdown(entries[:1]) == {}

    sys.path.insert(0, str(BENCHMARKS))
    try:
        import run_all
    finally:
        sys.path.remove(str(BENCHMARKS))
    line = run_all.summary(None, None, celery={"summary": summary})
    assert "Celery overhead (20-step plan vs hand-written PythonOperators, 3 pairs): wall 22.0 s vs 20.0 s" in line
