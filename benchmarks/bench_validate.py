"""Benchmark 2: validate one 1,000-step plan, and reject a 10,000-step plan early.

The 1,000-step plan chains blocks of chains, diamonds and wide fan-outs (fan-out up to 37,
fan-in up to 31) with ``$ref`` arguments in every block. Interleaved rounds time:

- candidate: ``json.loads`` + ``validate_plan(..., limits=PlanLimits(max_steps=1000,
  max_depth=1000, max_fan_out=64))`` (every check: schema, graph, shape, references, arguments);
- baseline: ``json.loads`` + ``Plan.model_validate`` of the same document (the schema only),
  so the ratio shows what the semantic checks cost on top.

Also timed alone: ``validate_plan`` on the already parsed document (target: < 100 ms on the
2-core dev machine), and ``validate_plan`` of a 10,000-step plan, which must stop at
``too_many_steps`` before looking at any step.

Run: ``.venv/bin/python benchmarks/bench_validate.py [--steps 1000] [--rounds 15]``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _plans import big_plan

from airflow_claude.catalog.catalog import Catalog
from airflow_claude.errors import Code
from airflow_claude.examples.orders import catalog as orders_catalog
from airflow_claude.plan.limits import PlanLimits
from airflow_claude.plan.model import Plan
from airflow_claude.plan.validator import validate_plan

TARGET_MS = 100.0
LIMITS = PlanLimits(max_steps=1000, max_depth=1000, max_fan_out=64)


@dataclass
class ValidateResult:
    steps: int
    rounds: int
    candidate_s: list[float] = field(default_factory=list)
    baseline_s: list[float] = field(default_factory=list)
    validate_only_s: list[float] = field(default_factory=list)
    validate_only_cpu_s: list[float] = field(default_factory=list)
    reject_steps: int = 0
    reject_s: list[float] = field(default_factory=list)
    reject_parse_s: list[float] = field(default_factory=list)
    profile_top: list[tuple[str, int, float, float]] = field(default_factory=list)
    profile_total_s: float = 0.0

    @property
    def candidate_median_s(self) -> float:
        return statistics.median(self.candidate_s)

    @property
    def baseline_median_s(self) -> float:
        return statistics.median(self.baseline_s)

    @property
    def validate_only_median_s(self) -> float:
        return statistics.median(self.validate_only_s)

    @property
    def validate_only_cpu_median_s(self) -> float:
        return statistics.median(self.validate_only_cpu_s)

    @property
    def ratio(self) -> float:
        """Median (json.loads + validate_plan) / median (json.loads + Plan.model_validate)."""
        return self.candidate_median_s / self.baseline_median_s

    @property
    def reject_median_s(self) -> float:
        return statistics.median(self.reject_s) if self.reject_s else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            candidate_median_s=self.candidate_median_s,
            baseline_median_s=self.baseline_median_s,
            validate_only_median_s=self.validate_only_median_s,
            validate_only_cpu_median_s=self.validate_only_cpu_median_s,
            ratio=self.ratio,
            reject_median_s=self.reject_median_s,
            target_ms=TARGET_MS,
        )
        return data


def _time(fn: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _time_both(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall time (``perf_counter``) and CPU time of this process (``process_time``)."""
    gc.collect()
    cpu = time.process_time()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def run(
    steps: int = 1000,
    rounds: int = 15,
    *,
    reject_steps: int = 10_000,
    catalog: Catalog = orders_catalog,
    limits: PlanLimits = LIMITS,
    profile: bool = True,
    top: int = 15,
) -> ValidateResult:
    """Validate the big plan ``rounds`` times, alternating candidate and baseline order."""
    result = ValidateResult(steps=steps, rounds=rounds, reject_steps=reject_steps)
    text = json.dumps(big_plan(steps), indent=2)
    data = json.loads(text)

    def candidate() -> None:
        outcome = validate_plan(json.loads(text), catalog, limits=limits)
        if not outcome.ok:
            raise RuntimeError(f"the generated plan is invalid: {outcome.issues[:3]}")

    def baseline() -> None:
        Plan.model_validate(json.loads(text))

    def validate_only() -> None:
        validate_plan(data, catalog, limits=limits)

    candidate()  # warm up: compiled validators, croniter, pydantic
    baseline()
    for index in range(rounds):
        order = [("c", candidate), ("b", baseline)]
        if index % 2:
            order.reverse()
        for name, fn in order:
            (result.candidate_s if name == "c" else result.baseline_s).append(_time(fn))
        wall, cpu = _time_both(validate_only)
        result.validate_only_s.append(wall)
        result.validate_only_cpu_s.append(cpu)

    if reject_steps > limits.max_steps:
        huge_text = json.dumps(big_plan(reject_steps, "bench_huge"))
        huge = json.loads(huge_text)

        def reject() -> None:
            outcome = validate_plan(huge, catalog, limits=limits)
            if [issue.code for issue in outcome.issues] != [Code.TOO_MANY_STEPS]:
                raise RuntimeError(f"expected one too_many_steps issue, got {outcome.issues[:3]}")

        for _ in range(rounds):
            result.reject_s.append(_time(reject))
            result.reject_parse_s.append(_time(lambda: json.loads(huge_text)))

    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        validate_only()
        profiler.disable()
        stats = pstats.Stats(profiler)
        table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
        result.profile_total_s = stats.total_tt  # type: ignore[attr-defined]
        rows = sorted(table.items(), key=lambda item: item[1][3], reverse=True)
        for (file, line, name), (_cc, calls, tt, ct, _callers) in rows:
            if "airflow_claude" in file or "jsonschema" in file or "pydantic" in file:
                result.profile_top.append((f"{_short(file)}:{line}({name})", calls, tt, ct))
            if len(result.profile_top) >= top:
                break
    return result


def _short(file: str) -> str:
    for marker in ("site-packages/", f"{Path(__file__).resolve().parents[1]}/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def report(result: ValidateResult) -> str:
    ms = 1000.0
    only = result.validate_only_median_s * ms
    lines = [
        f"Benchmark 2: validate a {result.steps}-step plan, {result.rounds} interleaved rounds",
        f"  validate_plan alone (parsed doc)   : median {only:8.2f} ms  "
        f"target < {TARGET_MS:.0f} ms -> {'MET' if only < TARGET_MS else 'NOT MET'}",
        f"  validate_plan alone, CPU time      : median {result.validate_only_cpu_median_s * ms:8.2f} ms",
        f"  json.loads + validate_plan         : median {result.candidate_median_s * ms:8.2f} ms",
        f"  json.loads + Plan.model_validate   : median {result.baseline_median_s * ms:8.2f} ms",
        f"  ratio full validation / schema only: {result.ratio:.2f}x",
    ]
    if result.reject_s:
        parse = statistics.median(result.reject_parse_s) * ms
        lines.append(
            f"  {result.reject_steps}-step plan rejected (too_many_steps): validate_plan median "
            f"{result.reject_median_s * ms:.3f} ms (json.loads of it: {parse:.1f} ms)"
        )
    if result.profile_top:
        lines.append(
            f"  validate_plan under cProfile (total {result.profile_total_s * ms:.0f} ms), by cumulative time:"
        )
        lines += [
            f"    {ct * ms:8.1f} ms cum {tt * ms:8.1f} ms own {calls:8d} calls  {where}"
            for where, calls, tt, ct in result.profile_top
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=1000, help="steps of the plan to validate (default 1000)")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds (default 15)")
    parser.add_argument("--reject-steps", type=int, default=10_000, help="steps of the too-big plan (0: skip)")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    parser.add_argument("--json-out", type=str, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    limits = PlanLimits(max_steps=max(1000, args.steps), max_depth=max(1000, args.steps), max_fan_out=64)
    result = run(args.steps, args.rounds, reject_steps=args.reject_steps, limits=limits, profile=not args.no_profile)
    print(report(result))
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as handle:
            json.dump(result.to_json(), handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
