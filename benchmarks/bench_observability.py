"""Benchmark 5: the cost of OpenTelemetry tracing (and metrics) on a plan step, on against off.

One process runs the same plan step through ``PlanStepOperator.execute`` (the whole step
runtime: the ``$ref`` resolved from a fake upstream XCom, the input schema check, the
idempotency key, the ledger in a dict task state store, the tool call, the output check,
masking, provenance, the records) in three phases, interleaved round by round with the order
rotating every round:

- **off**: ``trace.NoOpTracer()``, what a task has when ``[traces] otel_on`` is false (no
  provider is set, and the package's ``ProxyTracer`` delegates to a no-op tracer);
- **on**: an SDK ``TracerProvider`` with a ``BatchSpanProcessor`` over an exporter that counts
  and drops the spans, as Airflow's ``configure_otel`` builds it (with its id generator). The
  phase ends with a ``force_flush`` inside its timing, so the export is paid by the phase;
- **on + metrics**: the same, with Airflow's ``SafeOtelLogger`` over an SDK ``MeterProvider``
  (``InMemoryMetricReader``) installed with ``stats.initialize``; the other phases have the
  no-op ``NoStatsLogger``, and it is put back at the end.

The global tracer provider can be set only once per process, so the phases swap the module's
tracer, ``airflow_claude.observability.tracing._tracer``, between ``trace.NoOpTracer()`` and
``provider.get_tracer("airflow_claude")``; the original is restored at the end. Records go to
a stdlib logger writing to ``os.devnull`` (in a task they go to the task log file), the same in
every phase. Two steps are measured: **aggregate_revenue** over a few hundred order rows (a
realistic step: the headline figure) and **check_quality** over 5 rows (a tiny step, where the
fixed cost of the spans weighs most). Each phase runs ``--steps-per-round`` steps (the tiny
step 10x as many) and its time per step is recorded; the report gives the ratio of medians
(on / off), the median of the per-round ratios, CPU-time ratios, and the overhead per step in
microseconds. Target: at most a few percent (<= 1.05x). Reported, never failed.

The DAG parse path: a fresh interpreter sets a global ``TracerProvider`` recording to an
in-memory exporter, imports ``airflow_claude.factory``, builds a plans folder with
``load_plan_dags`` and counts the spans the package created (must be 0). A probe span through
the package's tracer afterwards shows that the recorder would have seen them.

Run: ``.venv/bin/python benchmarks/bench_observability.py [--rounds 7] [--steps-per-round 15]
[--rows 200] [--parse-plans 20] [--json-out FILE]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger
from airflow.sdk._shared.observability.metrics.otel_logger import SafeOtelLogger
from airflow.sdk._shared.observability.traces import OverrideableRandomIdGenerator
from airflow.sdk.observability import stats
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from airflow_claude.examples.orders import catalog, day_rows
from airflow_claude.observability import tracing
from airflow_claude.runtime.execute import step_attributes, tool_attributes
from airflow_claude.runtime.provenance import StepIdentity
from airflow_claude.runtime.step import PlanStepOperator

HERE = Path(__file__).resolve().parent
TARGET_RATIO = 1.05
OFF, ON, METRICS = "off", "on", "on_metrics"
PHASES: tuple[str, ...] = (OFF, ON, METRICS)
TINY_FACTOR = 10  # the tiny step runs this many times more steps per phase
_COLUMNS = ("id", "order_date", "region", "product", "quantity", "unit_price", "status")


class DroppingExporter(SpanExporter):
    """Counts the spans it is given by name and drops them (a collector that costs nothing)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for item in spans:
            self.counts[item.name] = self.counts.get(item.name, 0) + 1
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class FakeTI:
    """What a step uses of a RuntimeTaskInstance: ids, try number, XCom (the upstream output)."""

    dag_id, run_id, try_number = "bench_obs", "manual__2026-12-01", 1

    def __init__(self, task_id: str, outputs: dict[str, Any]) -> None:
        self.task_id = task_id
        self.outputs = outputs
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str, key: str = "return_value", default: Any = None, **_: Any) -> Any:
        return self.outputs.get(task_ids, default) if key == "return_value" else self.pushed.get(key, default)

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class DictStore:
    """The task state store's interface in memory (a fresh one per step: the ledger starts empty)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any, *, retention: timedelta | None = None) -> None:
        self.data[key] = value


def order_rows(count: int) -> list[dict[str, Any]]:
    """``count`` order rows from the example catalog's deterministic generator (20 a day)."""
    rows: list[dict[str, Any]] = []
    day = date(2026, 11, 1)
    while len(rows) < count:
        rows += [dict(zip(_COLUMNS, row, strict=True)) for row in day_rows(day)]
        day += timedelta(days=1)
    return rows[:count]


def _step_log() -> logging.Logger:
    log = logging.getLogger("airflow_claude.bench.step_log")
    if not log.handlers:
        handler = logging.FileHandler(os.devnull)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


@dataclass
class StepCase:
    """One step to run repeatedly: the task, and what its task instance sees upstream."""

    name: str
    task: PlanStepOperator
    outputs: dict[str, Any]
    per_phase: int

    def run_once(self) -> Any:
        context = {"ti": FakeTI(self.task.task_id, self.outputs), "task_state_store": DictStore()}
        return self.task.execute(context)


def make_case(tool: str, rows: int, args: dict[str, Any], per_phase: int) -> StepCase:
    step_id = f"{tool}_{rows}"
    identity = StepIdentity("bench_obs_plan", "sha256:" + "0" * 64, step_id, tool, "1", catalog.fingerprint)
    task = PlanStepOperator.for_step(task_id=step_id, tool=catalog[tool], step_args=args, identity=identity)  # type: ignore[arg-type]
    task._cached_logger = _step_log()  # records to a log "file", as in a task (the same in every phase)
    data = order_rows(rows)
    return StepCase(f"{tool} ({rows} rows)", task, {"q": {"rows": data, "count": len(data)}}, per_phase)


@dataclass
class CaseResult:
    name: str
    steps_per_phase: int
    wall_us: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PHASES})
    cpu_us: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PHASES})

    def median(self, phase: str, cpu: bool = False) -> float:
        return statistics.median((self.cpu_us if cpu else self.wall_us)[phase])

    def ratio(self, phase: str = ON, cpu: bool = False) -> float:
        """Ratio of medians: median time per step in ``phase`` / median with tracing off."""
        return self.median(phase, cpu) / self.median(OFF, cpu)

    def paired_ratio(self, phase: str = ON) -> float:
        """Median of the per-round ratios (each round's phase against that round's off phase)."""
        return statistics.median(a / b for a, b in zip(self.wall_us[phase], self.wall_us[OFF], strict=True))

    def overhead_us(self, phase: str = ON, cpu: bool = False) -> float:
        return self.median(phase, cpu) - self.median(OFF, cpu)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "steps_per_phase": self.steps_per_phase}
        for phase in PHASES:
            data[f"{phase}_us"] = self.median(phase)
            data[f"{phase}_cpu_us"] = self.median(phase, cpu=True)
            data[f"{phase}_rounds_us"] = self.wall_us[phase]
        for phase in (ON, METRICS):
            data[f"ratio_{phase}"] = self.ratio(phase)
            data[f"paired_ratio_{phase}"] = self.paired_ratio(phase)
            data[f"cpu_ratio_{phase}"] = self.ratio(phase, cpu=True)
            data[f"overhead_{phase}_us"] = self.overhead_us(phase)
            data[f"cpu_overhead_{phase}_us"] = self.overhead_us(phase, cpu=True)
        return data


@dataclass
class ObservabilityResult:
    rounds: int
    steps_per_round: int
    rows: int
    cases: list[CaseResult] = field(default_factory=list)
    spans_exported: dict[str, int] = field(default_factory=dict)
    spans_expected: int = 0
    metric_steps_counted: int = 0
    metric_steps_expected: int = 0
    parse_path: dict[str, Any] = field(default_factory=dict)
    breakdown: dict[str, float] = field(default_factory=dict)

    @property
    def headline(self) -> CaseResult:
        return self.cases[0]

    @property
    def estimated_ratio(self) -> float:
        """1 + the tiny step's overhead over the headline step's time with tracing off.

        The spans cost the same on every step (their attributes do not depend on the data), and
        the tiny step measures that cost with far less noise than the ratio of two ~20 ms steps.
        """
        return 1.0 + self.cases[-1].overhead_us(ON) / self.headline.median(OFF)

    def to_json(self) -> dict[str, Any]:
        head = self.headline
        return {
            "rounds": self.rounds,
            "steps_per_round": self.steps_per_round,
            "rows": self.rows,
            "target_ratio": TARGET_RATIO,
            "step": head.name,
            "off_us": head.median(OFF),
            "on_us": head.median(ON),
            "on_metrics_us": head.median(METRICS),
            "ratio": head.ratio(ON),
            "paired_ratio": head.paired_ratio(ON),
            "cpu_ratio": head.ratio(ON, cpu=True),
            "overhead_us": head.overhead_us(ON),
            "estimated_ratio": self.estimated_ratio,
            "metrics_ratio": head.ratio(METRICS),
            "metrics_overhead_us": head.overhead_us(METRICS),
            "cases": [case.to_json() for case in self.cases],
            "spans_exported": self.spans_exported,
            "spans_expected": self.spans_expected,
            "metric_steps_counted": self.metric_steps_counted,
            "metric_steps_expected": self.metric_steps_expected,
            "breakdown": self.breakdown,
            "parse_path": self.parse_path,
            "parse_path_package_spans": self.parse_path.get("package_spans"),
        }


class Switch:
    """Puts the package's tracer and Airflow's stats backend in the state of one phase."""

    def __init__(self) -> None:
        self.exporter = DroppingExporter()
        self.processor = BatchSpanProcessor(self.exporter)
        self.provider = TracerProvider(id_generator=OverrideableRandomIdGenerator())
        self.provider.add_span_processor(self.processor)
        self.reader = InMemoryMetricReader()
        self.meters = MeterProvider(metric_readers=[self.reader])
        self.otel_stats = SafeOtelLogger(self.meters)
        self.no_stats = NoStatsLogger()
        self.original = tracing._tracer
        self.tracers = {OFF: trace.NoOpTracer(), ON: self.provider.get_tracer("airflow_claude")}

    def enter(self, phase: str) -> None:
        tracing._tracer = self.tracers[OFF if phase == OFF else ON]  # type: ignore[assignment]
        backend = self.otel_stats if phase == METRICS else self.no_stats
        stats.initialize(factory=lambda: backend, export_legacy_names=False)

    def end(self, phase: str) -> None:
        """Inside the phase's timing: the batch processor exports what it holds."""
        if phase != OFF:
            self.processor.force_flush()

    def close(self) -> None:
        tracing._tracer = self.original
        stats.initialize(factory=NoStatsLogger, export_legacy_names=False)
        self.provider.shutdown()
        self.meters.shutdown()

    def steps_counted(self) -> int:
        data = self.reader.get_metrics_data()
        total = 0
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == "airflow.claude.steps":
                        total += sum(int(getattr(p, "value", 0)) for p in metric.data.data_points)
        return total


@contextmanager
def switched() -> Iterator[Switch]:
    switch = Switch()
    try:
        yield switch
    finally:
        switch.close()


def _time_phase(case: StepCase, switch: Switch, phase: str) -> tuple[float, float]:
    """Microseconds per step (wall, CPU) of ``case.per_phase`` steps in ``phase``."""
    switch.enter(phase)
    gc.collect()
    cpu = time.process_time()
    start = time.perf_counter()
    for _ in range(case.per_phase):
        case.run_once()
    switch.end(phase)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu
    return wall / case.per_phase * 1e6, cpu / case.per_phase * 1e6


def breakdown(switch: Switch, case: StepCase, repeat: int = 5, number: int = 400) -> dict[str, float]:
    """Best-of-``repeat`` microseconds of the pieces of the tracing cost, warm, outside a step.

    The package's two spans with their attributes as ``run_step`` opens them (on and off), the
    masking of those attributes alone, and two nested SDK spans with no attributes.
    """
    identity = case.task.identity
    step_attrs = step_attributes(identity, 1)
    tool_attrs = tool_attributes(case.task.tool, "ik_" + "0" * 40)
    extra = {"airflow_claude.idempotency_key": "ik_" + "0" * 40, "airflow_claude.step.replayed": False}

    def package() -> None:
        with tracing.span(f"step {identity.step_id}", step_attrs) as current:
            tracing.set_attributes(current, extra)
            with tracing.span(f"execute_tool {identity.tool}", tool_attrs):
                pass

    def masking() -> None:
        tracing._attributes(step_attrs)
        tracing._attributes(extra)
        tracing._attributes(tool_attrs)

    sdk = switch.tracers[ON]

    def bare() -> None:
        with (
            sdk.start_as_current_span("a", record_exception=False, set_status_on_exception=False),
            sdk.start_as_current_span("b", record_exception=False, set_status_on_exception=False),
        ):
            pass

    def best(fn: Any, phase: str) -> float:
        switch.enter(phase)
        fn()
        value = min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6
        switch.end(phase)
        return value

    return {
        "package_spans_on_us": best(package, ON),
        "package_spans_off_us": best(package, OFF),
        "attribute_masking_us": best(masking, OFF),
        "bare_sdk_spans_us": best(bare, ON),
    }


def run(rounds: int = 7, steps_per_round: int = 15, *, rows: int = 200, parse_plans: int = 20) -> ObservabilityResult:
    """Time every case in every phase, ``rounds`` times, rotating the phase order each round."""
    result = ObservabilityResult(rounds=rounds, steps_per_round=steps_per_round, rows=rows)
    cases = [
        make_case(
            "aggregate_revenue", rows, {"rows": {"$ref": "steps.q.output.rows"}, "by": "region"}, steps_per_round
        ),
        make_case(
            "check_quality", 5, {"rows": {"$ref": "steps.q.output.rows"}, "min_rows": 1}, steps_per_round * TINY_FACTOR
        ),
    ]
    result.cases = [CaseResult(case.name, case.per_phase) for case in cases]
    with switched() as switch:
        for phase in PHASES:  # warm-up: imports, compiled validators, the SDK's first spans and instruments
            switch.enter(phase)
            for case in cases:
                case.run_once()
            switch.end(phase)
        switch.exporter.counts.clear()
        warm_steps = switch.steps_counted()
        for index in range(rounds):
            order = PHASES[index % len(PHASES) :] + PHASES[: index % len(PHASES)]
            for case, timings in zip(cases, result.cases, strict=True):
                for phase in order:
                    wall, cpu = _time_phase(case, switch, phase)
                    timings.wall_us[phase].append(wall)
                    timings.cpu_us[phase].append(cpu)
        result.spans_exported = dict(sorted(switch.exporter.counts.items()))  # flushed by each traced phase
        result.metric_steps_counted = switch.steps_counted() - warm_steps
        result.breakdown = breakdown(switch, cases[0])
    traced = rounds * sum(case.per_phase for case in cases) * 2  # two traced phases
    result.spans_expected = 2 * traced  # a step span and its execute_tool span
    result.metric_steps_expected = rounds * sum(case.per_phase for case in cases)
    if parse_plans > 0:
        result.parse_path = parse_path(parse_plans)
    return result


def parse_path(plans: int) -> dict[str, Any]:
    """Spans the package creates while a fresh interpreter imports the factory and parses ``plans`` plans."""
    command = [sys.executable, str(Path(__file__).resolve()), "--parse-path-child", str(plans)]
    completed = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        return {"error": f"exit code {completed.returncode}: {completed.stderr[-2000:]}"}
    data: dict[str, Any] = json.loads(lines[-1])
    return data


def _parse_path_child(plans: int) -> int:
    """In a fresh interpreter: a recording provider first, then the factory's import and one parse."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    started = time.perf_counter()
    import airflow_claude.factory  # noqa: F401  (imported under the recording provider)
    from airflow_claude.factory.build import load_plan_dags

    sys.path.insert(0, str(HERE))
    from _plans import write_plans

    with tempfile.TemporaryDirectory(prefix="bench_obs_plans_") as tmp:
        write_plans(Path(tmp), plans)
        dags = load_plan_dags(Path(tmp), catalog)
    elapsed = time.perf_counter() - started
    during = list(exporter.get_finished_spans())
    with tracing.span("probe"):  # the package's tracer does reach this recorder
        pass
    probe = len(exporter.get_finished_spans()) - len(during)
    package = [s for s in during if s.instrumentation_scope and s.instrumentation_scope.name == "airflow_claude"]
    print(
        json.dumps(
            {
                "plans": plans,
                "dags": len(dags),
                "tasks": sum(len(dag.task_dict) for dag in dags.values()),
                "package_spans": len(package),
                "all_spans": len(during),
                "span_names": sorted({s.name for s in during}),
                "probe_spans": probe,
                "seconds": round(elapsed, 3),
            }
        )
    )
    return 0


def _line(case: CaseResult) -> list[str]:
    on, metrics = case.ratio(ON), case.ratio(METRICS)
    return [
        f"  {case.name}, {case.steps_per_phase} steps a phase:",
        f"    tracing off          : median {case.median(OFF):9.1f} us/step (CPU {case.median(OFF, True):9.1f})",
        f"    tracing on           : median {case.median(ON):9.1f} us/step (CPU {case.median(ON, True):9.1f})",
        f"    tracing + metrics on : median {case.median(METRICS):9.1f} us/step "
        f"(CPU {case.median(METRICS, True):9.1f})",
        f"    ratio on/off         : {on:.3f}x (per-round median {case.paired_ratio(ON):.3f}x, "
        f"CPU {case.ratio(ON, True):.3f}x), overhead {case.overhead_us(ON):+.1f} us/step "
        f"(CPU {case.overhead_us(ON, True):+.1f}); target <= {TARGET_RATIO}x -> "
        f"{'MET' if on <= TARGET_RATIO else 'NOT MET'}",
        f"    ratio +metrics/off   : {metrics:.3f}x (per-round median {case.paired_ratio(METRICS):.3f}x, "
        f"CPU {case.ratio(METRICS, True):.3f}x), overhead {case.overhead_us(METRICS):+.1f} us/step "
        f"(CPU {case.overhead_us(METRICS, True):+.1f})",
    ]


def report(result: ObservabilityResult) -> str:
    lines = [
        f"Benchmark 5: tracing on a step, on against off, {result.rounds} interleaved rounds "
        f"({result.steps_per_round} steps of {result.rows} rows a phase)"
    ]
    for case in result.cases:
        lines += _line(case)
    lines.append(
        f"  estimated ratio for the first step: 1 + the tiny step's overhead / its time off = "
        f"{result.estimated_ratio:.3f}x (the spans cost the same on any step; less noise than its own ratio)"
    )
    exported = sum(result.spans_exported.values())
    lines.append(
        f"  spans exported in the traced phases: {exported} (expected {result.spans_expected}: "
        f"{', '.join(f'{k} {v}' for k, v in result.spans_exported.items())})"
    )
    lines.append(
        f"  claude.steps metric points in the metrics phase: {result.metric_steps_counted} "
        f"(expected {result.metric_steps_expected})"
    )
    if result.breakdown:
        bd = result.breakdown
        lines.append(
            f"  pieces (best of 5, warm): the step's 2 spans + 3 attribute sets {bd['package_spans_on_us']:.1f} us on, "
            f"{bd['package_spans_off_us']:.1f} us off; of which masking the attributes "
            f"{bd['attribute_masking_us']:.1f} us; 2 bare SDK spans {bd['bare_sdk_spans_us']:.1f} us"
        )
    pp = result.parse_path
    if "error" in pp:
        lines.append(f"  DAG parse path: the child crashed: {pp['error']}")
    elif pp:
        verdict = "nothing added" if pp["package_spans"] == 0 else "NOT zero"
        lines.append(
            f"  DAG parse path (fresh interpreter, recording provider): import + load_plan_dags of {pp['plans']} "
            f"plans ({pp['tasks']} tasks): {pp['package_spans']} spans by airflow_claude ({verdict}), "
            f"{pp['all_spans']} in all; a probe span after it: {pp['probe_spans']} recorded"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--steps-per-round", type=int, default=15, help="steps per phase and round (default 15)")
    parser.add_argument("--rows", type=int, default=200, help="order rows the aggregate step reads (default 200)")
    parser.add_argument("--parse-plans", type=int, default=20, help="plans for the parse-path check (0: skip)")
    parser.add_argument("--json-out", type=str, help="also write the results as JSON to this file")
    parser.add_argument("--parse-path-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.parse_path_child is not None:
        return _parse_path_child(args.parse_path_child)
    result = run(args.rounds, args.steps_per_round, rows=args.rows, parse_plans=args.parse_plans)
    print(report(result))
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as handle:
            json.dump(result.to_json(), handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
