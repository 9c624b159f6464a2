"""Keep the benchmarks from rotting: run each one at a tiny size and check what it reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from airflow_claude.examples.orders import catalog
from airflow_claude.plan.limits import PlanLimits
from airflow_claude.plan.loader import load_plan_file
from airflow_claude.plan.validator import validate_plan

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> dict[str, ModuleType]:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import _plans
        import bench_factory
        import bench_observability
        import bench_validate
        import run_all
    finally:
        sys.path.remove(str(BENCHMARKS))
    return {
        "plans": _plans,
        "factory": bench_factory,
        "validate": bench_validate,
        "observability": bench_observability,
        "run_all": run_all,
    }


def test_generated_plans_are_valid(bench: dict[str, ModuleType], tmp_path: Path) -> None:
    plans = bench["plans"]
    paths = plans.write_plans(tmp_path, 6)
    assert len({p.name for p in paths}) == 6
    shapes = set()
    for path in paths:
        result = load_plan_file(path, catalog)
        assert result.ok, result.issues
        assert result.plan is not None and len(result.plan.steps) == 10
        assert any("$ref" in str(step.args) for step in result.plan.steps)
        shapes.add(result.plan.id.split("_")[1])
    assert shapes == set(plans.SHAPES)


@pytest.mark.parametrize("steps", [1, 7, 40, 137, 1000])
def test_big_plan_is_valid_and_exact(bench: dict[str, ModuleType], steps: int) -> None:
    plan = bench["plans"].big_plan(steps)
    assert len(plan["steps"]) == steps
    result = validate_plan(plan, catalog, limits=PlanLimits(max_steps=1000, max_depth=1000, max_fan_out=64))
    assert result.ok, result.issues[:5]


def test_factory_benchmark_runs(bench: dict[str, ModuleType]) -> None:
    factory = bench["factory"]
    result = factory.run(plans=5, rounds=2, top=5)
    assert result.base_of(factory.CANDIDATE) == factory.BASELINE_SAGA  # compared with the same graph, saga included
    assert result.base_of(factory.SAME_GRAPH) == factory.BASELINE
    for name in result.timings.keys() - {factory.BASELINE, factory.BASELINE_SAGA}:
        assert result.ratio(name) > 0 and result.paired_ratio(name) > 0 and result.cpu_ratio(name) > 0
        assert result.memory_ratio(name) > 0
    assert result.tasks[factory.CANDIDATE] == result.tasks[factory.BASELINE_SAGA] > result.tasks[factory.BASELINE]
    assert result.profiles[factory.CANDIDATE].phases
    assert result.phases_s
    text = factory.report(result)
    assert "ratio load_plan_dags (default) / baseline + same saga" in text


def test_factory_benchmark_in_turns(bench: dict[str, ModuleType]) -> None:
    factory = bench["factory"]
    result = factory.run(plans=5, rounds=1, chunk_plans=2, memory=False, profile=False)
    assert result.chunk_plans == 2
    assert result.tasks[factory.BASELINE] == 50
    assert result.min_ratio() > 0 and result.cpu_min_ratio() > 0


def test_baseline_builds_the_same_graph(bench: dict[str, ModuleType], tmp_path: Path) -> None:
    factory = bench["factory"]
    bench["plans"].write_plans(tmp_path, 3)
    candidate = factory.run_same_graph(tmp_path, catalog)  # without the saga task group
    baseline = factory.run_baseline(tmp_path, catalog)
    assert candidate.keys() == baseline.keys()
    for dag_id, dag in candidate.items():
        other = baseline[dag_id]
        assert set(dag.task_dict) == set(other.task_dict)
        for task_id, task in dag.task_dict.items():
            assert task.upstream_task_ids == other.task_dict[task_id].upstream_task_ids
        assert type(dag.timetable) is type(other.timetable)
        assert getattr(dag.timetable, "expression", None) == getattr(other.timetable, "expression", None)
        assert (dag.start_date, dag.catchup, dag.tags) == (other.start_date, other.catchup, other.tags)
    by_hand = factory.run_baseline_saga(tmp_path, catalog)  # the default adds compensation tasks: same by hand
    for dag_id, dag in factory.run_candidate(tmp_path, catalog).items():
        other = by_hand[dag_id]
        assert set(baseline[dag_id].task_dict) < set(dag.task_dict) == set(other.task_dict)
        for task_id, task in dag.task_dict.items():
            assert task.upstream_task_ids == other.task_dict[task_id].upstream_task_ids, task_id
            assert task.trigger_rule == other.task_dict[task_id].trigger_rule, task_id


def test_validate_benchmark_runs(bench: dict[str, ModuleType]) -> None:
    validate = bench["validate"]
    result = validate.run(steps=30, rounds=2, reject_steps=1200, top=5)
    assert result.ratio > 0 and result.validate_only_median_s > 0
    assert result.reject_s and result.reject_median_s > 0
    assert "validate_plan alone" in validate.report(result)


def test_run_all_summary(bench: dict[str, ModuleType]) -> None:
    factory = bench["factory"].run(plans=3, rounds=1, memory=False, profile=False)
    validate = bench["validate"].run(steps=10, rounds=1, reject_steps=0, profile=False)
    text = bench["run_all"].summary(factory.to_json(), validate.to_json())
    assert "factory (3 plans" in text and "validate (10 steps)" in text


def test_observability_benchmark_runs(bench: dict[str, ModuleType]) -> None:
    """Tracing on a step at a tiny size; the package's tracer and Airflow's stats are put back after it."""
    from airflow.sdk._shared.observability.metrics import stats as airflow_stats

    from airflow_claude.observability import tracing

    obs = bench["observability"]
    before = tracing._tracer
    result = obs.run(rounds=2, steps_per_round=2, rows=20, parse_plans=2)
    assert tracing._tracer is before
    assert airflow_stats._get_backend().__class__.__name__ == "NoStatsLogger"
    data = result.to_json()
    for name in ("off_us", "on_us", "on_metrics_us", "ratio", "paired_ratio", "cpu_ratio", "metrics_ratio"):
        assert data[name] > 0, name
    assert data["overhead_us"] == data["on_us"] - data["off_us"] and data["target_ratio"] == obs.TARGET_RATIO
    assert data["estimated_ratio"] > 0
    assert [case["steps_per_phase"] for case in data["cases"]] == [2, 2 * obs.TINY_FACTOR]
    assert all(len(case["off_rounds_us"]) == 2 for case in data["cases"])
    # every traced step was exported as a step span and a tool span; the metrics phase counted its steps
    assert sum(data["spans_exported"].values()) == data["spans_expected"] == 4 * 2 * (2 + 2 * obs.TINY_FACTOR)
    assert data["metric_steps_counted"] == data["metric_steps_expected"] > 0
    assert data["breakdown"]["package_spans_on_us"] > data["breakdown"]["package_spans_off_us"] > 0
    parse = data["parse_path"]
    assert "error" not in parse, parse
    assert data["parse_path_package_spans"] == parse["package_spans"] == 0  # nothing on the DAG parse path
    assert parse["dags"] == 2 and parse["probe_spans"] == 1  # ... and the recorder would have seen a span
    text = obs.report(result)
    assert "ratio on/off" in text and "0 spans by airflow_claude" in text
    assert "tracing on a step (aggregate_revenue (20 rows)): on/off ratio" in bench["run_all"].summary(
        None, None, observability=data
    )


def test_automation_overhead_benchmark_pieces(tmp_path: Path) -> None:
    """The Airflow benchmark's parts that need no running Airflow: the plan, the fake's answers, the counts."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_automation_overhead as overhead
        import run_all
    finally:
        sys.path.remove(str(BENCHMARKS))
    plan = overhead.bench_plan()
    assert len(plan["steps"]) == 5 and overhead.DROPPED_STEP not in json.dumps(plan)
    assert validate_plan(plan, catalog).ok
    overhead.write_dag_folder(tmp_path)
    assert load_plan_file(tmp_path / "plans" / f"{overhead.COMPILED}.json", catalog).ok
    assert (tmp_path / "bench_dags.py").read_text().count("claude_automation(") == 1
    asked = overhead.answer({"tool_choice": {"type": "tool", "name": "submit_plan"}})
    assert asked["tool_use"]["input"]["steps"] == plan["steps"]  # the automation runs the same steps
    review = overhead.answer({"tool_choice": {"type": "tool", "name": "submit_review"}})
    assert review["tool_use"]["input"]["verdict"] == "done"
    start, end = "2026-12-01T10:00:00Z", "2026-12-01T10:00:02Z"
    tis = [
        {"task_id": "a", "map_index": -1, "hostname": "vm", "state": "success", "start_date": start, "end_date": end},
        {"task_id": "s", "map_index": 0, "hostname": "vm", "state": "success", "start_date": start, "end_date": end},
        {"task_id": "s", "map_index": 1, "hostname": "", "state": "skipped", "start_date": start, "end_date": start},
    ]
    counts = overhead.count_tis(tis)  # the skipped TI got a start_date from the scheduler, not a worker
    assert (counts["created"], counts["executed"], counts["skipped"], counts["task_seconds"]) == (3, 2, 1, 4.0)
    assert counts["by_task"] == {"a": 1, "s": 2}
    assert overhead.deferred_in_log(f"... {overhead.DEFER_MARKER}. ...") and not overhead.deferred_in_log("ok")

    def record(dag_id: str, pair: int, wall: float, created: int) -> Any:
        return overhead.RunRecord(dag_id, pair, "r", "success", wall, wall, wall, 0.0, created, created, 0, 0, 0, 1.0)

    records = [record(overhead.COMPILED, -1, 99.0, 9)]  # the warm-up is not counted
    for pair in range(3):
        records += [record(overhead.COMPILED, pair, 10.0, 9), record(overhead.AUTOMATION, pair, 15.0 + pair, 18)]
    summary = overhead.summarize(records)
    assert summary["ratio_wall"] == 1.6 and summary["ratio_wall_paired_median"] == 1.6
    assert summary["ratio_created"] == 2.0 and summary[overhead.COMPILED]["runs"] == 3
    assert overhead.pair_order(0) == overhead.pair_order(2) == overhead.pair_order(1)[::-1]
    assert "ratio automation/compiled: wall 1.60x" in overhead.report(
        summary,
        records,
        {"package": "p", "checkout": "c", "harness": "h", "pairs": 3, "warmup": 1, "with_triggerer": True},
    )
    assert "automation overhead (5 steps, real Airflow): wall 16.0 s vs compiled 10.0 s, ratio 1.60x" in (
        run_all.summary(None, None, None, {"summary": summary})
    )
