"""Run the benchmarks, each in a fresh interpreter, and print their reports and a summary.

Targets are reported, never asserted: the exit code is 0 unless a benchmark crashes.

Run: ``.venv/bin/python benchmarks/run_all.py [--plans 1000] [--rounds 5] [--chunk-plans 0] [--steps 1000]
[--obs-rounds 7] [--obs-steps-per-round 15] [--automation-pairs N] [--celery-pairs N]`` (the automation-overhead
and Celery-overhead benchmarks start a real Airflow: they run only when asked).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _run(script: str, args: list[str], out: Path) -> dict[str, Any] | None:
    command = [sys.executable, str(HERE / script), *args, "--json-out", str(out)]
    print(f"$ {' '.join(command[1:])}", flush=True)
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0 or not out.exists():
        print(f"!! {script} crashed (exit code {completed.returncode})", flush=True)
        return None
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def summary(
    factory: dict[str, Any] | None,
    validate: dict[str, Any] | None,
    planner: dict[str, Any] | None = None,
    automation: dict[str, Any] | None = None,
    observability: dict[str, Any] | None = None,
    celery: dict[str, Any] | None = None,
) -> str:
    lines = ["", "Summary", "-------"]
    if factory:
        ratio = factory["ratio"]
        lines.append(
            f"factory ({factory['plans']} plans x 10 steps): candidate {factory['candidate_median_s'] * 1000:.0f} ms, "
            f"{factory.get('base', 'baseline')} {factory[factory.get('base', 'baseline') + '_median_s'] * 1000:.0f} ms "
            f"(the same graph built by hand), ratio {ratio:.2f}x "
            f"(per-round {factory['paired_ratio']:.2f}x; target <= {factory['target_ratio']}x: "
            f"{'met' if ratio <= factory['target_ratio'] else 'NOT met'}), CPU-time ratio {factory['cpu_ratio']:.2f}x, "
            f"best rounds {factory['min_ratio']:.2f}x wall / {factory['cpu_min_ratio']:.2f}x CPU, "
            f"peak memory ratio {factory['memory_ratio']:.2f}x"
        )
        if "same_graph_ratio" in factory:
            lines.append(
                f"  same graph (compensate=False): ratio {factory['same_graph_ratio']:.2f}x "
                f"(per-round {factory['same_graph_paired_ratio']:.2f}x), CPU-time ratio "
                f"{factory['same_graph_cpu_ratio']:.2f}x, best rounds {factory['same_graph_min_ratio']:.2f}x wall / "
                f"{factory['same_graph_cpu_min_ratio']:.2f}x CPU, "
                f"peak memory ratio {factory['same_graph_memory_ratio']:.2f}x"
            )
        if "candidate_vs_plain_ratio" in factory:
            lines.append(
                f"  (informative) candidate with its saga / baseline without one: "
                f"{factory['candidate_vs_plain_ratio']:.2f}x wall, {factory['candidate_vs_plain_cpu_ratio']:.2f}x CPU"
            )
    if validate:
        only = validate["validate_only_median_s"] * 1000
        lines.append(
            f"validate ({validate['steps']} steps): validate_plan {only:.1f} ms "
            f"(target < {validate['target_ms']:.0f} ms: {'met' if only < validate['target_ms'] else 'NOT met'}; "
            f"CPU {validate['validate_only_cpu_median_s'] * 1000:.1f} ms), "
            f"full/schema-only ratio {validate['ratio']:.1f}x, "
            f"{validate['reject_steps']}-step reject {validate['reject_median_s'] * 1000:.3f} ms"
        )
    if planner:
        ratio, calls = planner["input_ratio"], planner["plan_path_calls"]
        lines.append(
            f"planner vs loop ({planner['steps']} steps): plan path {calls} model calls "
            f"(target <= 2: {'met' if calls <= 2 else 'NOT met'}), input tokens {ratio:.3f}x the loop's "
            f"(target <= 0.25: {'met' if ratio <= 0.25 else 'NOT met'}), est. cost {planner['cost_ratio']:.3f}x; "
            f"cached re-run {planner['cached_plan_calls']} plan calls ({planner['cached_calls']} in total: the review)"
        )
    if observability:
        ratio, spans = observability["ratio"], observability.get("parse_path_package_spans")
        lines.append(
            f"tracing on a step ({observability['step']}): on/off ratio {ratio:.3f}x (per-round "
            f"{observability['paired_ratio']:.3f}x, CPU {observability['cpu_ratio']:.3f}x; target <= "
            f"{observability['target_ratio']}x: {'met' if ratio <= observability['target_ratio'] else 'NOT met'}), "
            f"overhead {observability['overhead_us']:+.0f} us/step of {observability['off_us']:.0f}, estimated "
            f"{observability['estimated_ratio']:.3f}x from the tiny step's overhead; "
            f"with metrics {observability['metrics_ratio']:.3f}x; spans on the DAG parse path: "
            f"{'not measured' if spans is None else spans}"
        )
    if automation:
        s = automation["summary"]
        compiled, auto = s.get("bench_compiled_plan", {}), s.get("bench_automation", {})
        if compiled and auto and "ratio_wall" in s:
            lines.append(
                f"automation overhead (5 steps, real Airflow): wall {auto['wall_s_median']:.1f} s vs compiled "
                f"{compiled['wall_s_median']:.1f} s, ratio {s['ratio_wall']:.2f}x (per-pair median "
                f"{s['ratio_wall_paired_median']:.2f}x); task instances created {auto['created_median']:g} vs "
                f"{compiled['created_median']:g}, executed {auto['executed_median']:g} vs "
                f"{compiled['executed_median']:g}"
            )
    if celery and "ratio_wall_s" in celery.get("summary", {}):
        s = celery["summary"]
        compiled, hand = s["bench_celery_plan"], s["bench_celery_hand"]
        lines.append(
            f"Celery overhead (20-step plan vs hand-written PythonOperators, {compiled['runs']} pairs): wall "
            f"{compiled['wall_s_median']:.1f} s vs {hand['wall_s_median']:.1f} s, ratio {s['ratio_wall_s']:.3f}x "
            f"(per pair {s['ratio_wall_s_paired_median']:.3f}x; target <= 1.05x: "
            f"{'met' if s['ratio_wall_s'] <= 1.05 else 'NOT met'}), first task -> last task {s['ratio_tasks_s']:.3f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the airflow-claude benchmarks and summarise them.")
    parser.add_argument("--plans", type=int, default=1000, help="plan files for the factory benchmark")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds for the factory benchmark")
    parser.add_argument(
        "--chunk-plans", type=int, default=0, help="factory: take turns every N plans (0: whole folder)"
    )
    parser.add_argument("--steps", type=int, default=1000, help="steps of the plan for the validation benchmark")
    parser.add_argument("--validate-rounds", type=int, default=15, help="rounds for the validation benchmark")
    parser.add_argument("--planner-rounds", type=int, default=3, help="rounds for the planner-vs-loop benchmark")
    parser.add_argument("--obs-rounds", type=int, default=7, help="rounds for the tracing-on-a-step benchmark")
    parser.add_argument(
        "--obs-steps-per-round", type=int, default=15, help="tracing benchmark: steps per phase and round"
    )
    parser.add_argument(
        "--automation-pairs",
        type=int,
        default=0,
        help="pairs for the automation-overhead benchmark (starts a real Airflow, ~3-5 min a pair); 0: skip it",
    )
    parser.add_argument(
        "--celery-pairs",
        type=int,
        default=0,
        help="pairs for the Celery-overhead benchmark (a real Airflow on Celery, ~1-2 min a pair); 0: skip it",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_results_") as tmp:
        factory = _run(
            "bench_factory.py",
            ["--plans", str(args.plans), "--rounds", str(args.rounds), "--chunk-plans", str(args.chunk_plans)],
            Path(tmp) / "f.json",
        )
        print(flush=True)
        validate = _run(
            "bench_validate.py",
            ["--steps", str(args.steps), "--rounds", str(args.validate_rounds)],
            Path(tmp) / "v.json",
        )
        print(flush=True)
        planner = _run("bench_planner_vs_loop.py", ["--rounds", str(args.planner_rounds)], Path(tmp) / "p.json")
        print(flush=True)
        observability = _run(
            "bench_observability.py",
            ["--rounds", str(args.obs_rounds), "--steps-per-round", str(args.obs_steps_per_round)],
            Path(tmp) / "o.json",
        )
        automation = None
        if args.automation_pairs > 0:
            print(flush=True)
            pairs = ["--pairs", str(args.automation_pairs)]
            automation = _run("bench_automation_overhead.py", pairs, Path(tmp) / "a.json")
        celery = None
        if args.celery_pairs > 0:
            print(flush=True)
            celery = _run("bench_celery_overhead.py", ["--pairs", str(args.celery_pairs)], Path(tmp) / "c.json")
    print(summary(factory, validate, planner, automation, observability, celery))
    crashed = (automation is None and args.automation_pairs > 0) or (celery is None and args.celery_pairs > 0)
    ran = (factory, validate, planner, observability)
    return 0 if all(result is not None for result in ran) and not crashed else 1


if __name__ == "__main__":
    sys.exit(main())
