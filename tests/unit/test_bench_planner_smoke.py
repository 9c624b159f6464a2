"""Keep the planner-vs-loop benchmark from rotting: one round, the table, and the structural facts.

Only structure is asserted (call counts); the token targets are the benchmark's to report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_planner_vs_loop
    finally:
        sys.path.remove(str(BENCHMARKS))
    return bench_planner_vs_loop


def test_one_round_prints_the_table(bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "result.json"
    cwd = Path.cwd()

    assert bench.main(["--rounds", "1", "--markdown", "--json-out", str(out)]) == 0

    assert Path.cwd() == cwd  # the runs' temporary working folders are left behind
    text = capsys.readouterr().out
    header = "| " + " | ".join(bench.COLUMNS) + " |"
    assert header in text
    for variant in bench.LOOP_VARIANTS:
        assert variant.name in text
    assert "plan-then-execute (plan + review)" in text and "cached re-run" in text
    assert "Targets:" in text

    data = json.loads(out.read_text())
    paths = {p["name"]: p for p in data["paths"]}
    plan = paths["plan-then-execute (plan + review)"]
    assert plan["calls"] <= 2  # plan + review
    assert plan["plan_calls"] == 1
    cached = paths["plan-then-execute, cached re-run"]
    assert cached["plan_calls"] == 0 and cached["calls"] == 1  # the review only
    for variant in bench.LOOP_VARIANTS:
        assert paths[variant.name]["calls"] == data["steps"] + 1  # one tool per turn, then the answer
    assert data["steps"] == 10
    assert all(p["total_input"] > 0 for p in data["paths"])
