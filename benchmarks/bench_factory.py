"""Benchmark 1: ``load_plan_dags`` against a plain loop building the same DAGs by hand.

N plan files of 10 steps (chain, diamond and fan shapes with ``$ref`` arguments) are written
to a temporary folder. In the same process, interleaved rounds (the order rotates every
round) time three contenders:

- candidate: ``load_plan_dags(folder, catalog)`` with its defaults (strict JSON read, full
  validation, hashing, docs, one ``PlanStepOperator`` or catalog operator per step, and a
  ``saga`` compensation task group for plans whose steps declare compensating tools);
- same graph: ``load_plan_dags(folder, catalog, compensate=False)``: the same work without the
  compensation tasks, so it builds exactly the baseline's graph (skipped if the factory has
  no ``compensate`` option);
- baseline: ``json.load`` of each file and a hand-built ``airflow.sdk.DAG`` per plan with one
  ``PythonOperator`` per step (``python_callable`` = the tool's function, ``op_kwargs`` = the
  step's args; the operator-backed ``run_sql`` tool gets its own ``SQLExecuteQueryOperator``,
  as a hand-written DAG would), the same dependencies, start date, schedule, tags, retries,
  timeouts and retry delay.

Reported: medians, the ratios to the baseline of wall time (``perf_counter``; target: within
1.2x) and of CPU time (``process_time``, less disturbed by other jobs on the machine), the
peak-memory ratios (tracemalloc), a phase split with plain timers and one cProfile run of the
candidate and of the baseline, to show where the time goes.

Run: ``.venv/bin/python benchmarks/bench_factory.py [--plans 1000] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import inspect
import json
import pstats
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from _plans import write_plans
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, CronDataIntervalTimetable, TaskGroup, TriggerRule
from airflow.sdk.definitions._internal.contextmanager import DagContext

from airflow_claude.catalog.catalog import Catalog
from airflow_claude.catalog.tool import OperatorTool, PythonTool
from airflow_claude.examples.orders import catalog as orders_catalog
from airflow_claude.factory import build
from airflow_claude.factory.build import DEFAULT_START_DATE, TAG, compile_plan, load_plan_dags
from airflow_claude.factory.docs import plan_doc, step_doc
from airflow_claude.plan.limits import DEFAULT_LIMITS
from airflow_claude.plan.loader import load_plan_file
from airflow_claude.plan.model import Plan

TARGET_RATIO = 1.2
RETRY_DELAY = timedelta(seconds=30)
CANDIDATE, SAME_GRAPH, BASELINE, BASELINE_SAGA = "candidate", "same_graph", "baseline", "baseline_saga"
HAS_COMPENSATE = "compensate" in inspect.signature(load_plan_dags).parameters
#: Each factory contender is compared with the hand-built loop that builds exactly its graph.
BASE_OF = {CANDIDATE: BASELINE_SAGA, SAME_GRAPH: BASELINE}

Contender = Callable[[Path, Catalog], dict[str, DAG]]

#: Functions whose cumulative cProfile time is shown per phase: (label, file path part, function name).
_PROFILE_PHASES: tuple[tuple[str, str, str], ...] = (
    ("json.load (baseline's read)", "json/__init__.py", "load"),
    ("load_plan_file (read + parse + validate)", "plan/loader.py", "load_plan_file"),
    ("  parse_json_text (strict JSON)", "plan/loader.py", "parse_json_text"),
    ("  Plan.model_validate (pydantic)", "pydantic/main.py", "model_validate"),
    ("  _check_steps (graph, refs, limits, args)", "plan/validator.py", "_check_steps"),
    ("    _check_args (jsonschema per step)", "plan/validator.py", "_check_args"),
    ("    _check_refs", "plan/validator.py", "_check_refs"),
    ("    _check_step_limits (size, nesting)", "plan/validator.py", "_check_step_limits"),
    ("    plan hash (model_dump + canonical JSON)", "plan/model.py", "canonical_bytes"),
    ("  _check_schedule (croniter)", "plan/validator.py", "_check_schedule"),
    ("compile_plan (plan -> DAG)", "factory/build.py", "compile_plan"),
    ("  plan_doc", "factory/docs.py", "plan_doc"),
    ("  step_doc", "factory/docs.py", "step_doc"),
    ("  _add_saga (compensation task group)", "factory/build.py", "_add_saga"),
    ("DAG.__init__", "<attrs generated methods airflow.sdk.definitions.dag.DAG>", "__init__"),
    ("operator construction (all apply_defaults)", "sdk/bases/operator.py", "apply_defaults"),
    ("  build_operator_task (run_sql wrapper)", "runtime/operator_step.py", "build_operator_task"),
    ("dependencies (set_upstream, >>)", "_internal/node.py", "_set_relatives"),
    ("DAG.__exit__", "sdk/definitions/dag.py", "__exit__"),
)


@dataclass
class Profile:
    """One cProfile run: total, cumulative time per phase (label -> (calls, seconds)), top own-time rows."""

    total_s: float = 0.0
    phases: dict[str, tuple[int, float]] = field(default_factory=dict)
    top: list[tuple[str, int, float, float]] = field(default_factory=list)


@dataclass
class Timings:
    """Per-round wall and CPU times of one contender."""

    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.wall_s)

    @property
    def cpu_median_s(self) -> float:
        return statistics.median(self.cpu_s)

    @property
    def min_s(self) -> float:
        return min(self.wall_s)

    @property
    def cpu_min_s(self) -> float:
        return min(self.cpu_s)


@dataclass
class FactoryResult:
    plans: int
    rounds: int
    chunk_plans: int = 0
    timings: dict[str, Timings] = field(default_factory=dict)
    peak_bytes: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)
    phases_s: dict[str, float] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)

    def base_of(self, name: str) -> str:
        """The baseline that builds the same graph as ``name``: with the saga for the default factory."""
        base = BASE_OF.get(name, BASELINE)
        return base if base in self.timings else BASELINE

    def ratio(self, name: str = CANDIDATE, base: str | None = None) -> float:
        """Median wall time of ``name`` / median wall time of its baseline."""
        return self.timings[name].median_s / self.timings[base or self.base_of(name)].median_s

    def paired_ratio(self, name: str = CANDIDATE, base: str | None = None) -> float:
        """Median of the per-round wall-time ratios (both ran in the same round)."""
        other = self.timings[base or self.base_of(name)]
        return statistics.median(c / b for c, b in zip(self.timings[name].wall_s, other.wall_s, strict=True))

    def cpu_ratio(self, name: str = CANDIDATE, base: str | None = None) -> float:
        """Median of the per-round CPU-time ratios: steadier than wall time when other jobs share the cores."""
        other = self.timings[base or self.base_of(name)]
        return statistics.median(c / b for c, b in zip(self.timings[name].cpu_s, other.cpu_s, strict=True))

    def min_ratio(self, name: str = CANDIDATE, base: str | None = None) -> float:
        """Best round of ``name`` / best round of its baseline, wall time: the least disturbed runs."""
        return self.timings[name].min_s / self.timings[base or self.base_of(name)].min_s

    def cpu_min_ratio(self, name: str = CANDIDATE, base: str | None = None) -> float:
        return self.timings[name].cpu_min_s / self.timings[base or self.base_of(name)].cpu_min_s

    def memory_ratio(self, name: str = CANDIDATE, base: str | None = None) -> float:
        other = self.peak_bytes.get(base or self.base_of(name), 0)
        return self.peak_bytes.get(name, 0) / other if other else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_ratio"] = TARGET_RATIO
        for name in self.timings:
            data[f"{name}_median_s"] = self.timings[name].median_s
            data[f"{name}_cpu_median_s"] = self.timings[name].cpu_median_s
            if name not in (BASELINE, BASELINE_SAGA):
                prefix = "" if name == CANDIDATE else f"{name}_"
                data[f"{prefix}base"] = self.base_of(name)
                data[f"{prefix}ratio"] = self.ratio(name)
                data[f"{prefix}paired_ratio"] = self.paired_ratio(name)
                data[f"{prefix}cpu_ratio"] = self.cpu_ratio(name)
                data[f"{prefix}min_ratio"] = self.min_ratio(name)
                data[f"{prefix}cpu_min_ratio"] = self.cpu_min_ratio(name)
                data[f"{prefix}memory_ratio"] = self.memory_ratio(name)
        if self.base_of(CANDIDATE) != BASELINE:  # informative: the saga's tasks against a graph without them
            data["candidate_vs_plain_ratio"] = self.ratio(CANDIDATE, BASELINE)
            data["candidate_vs_plain_cpu_ratio"] = self.cpu_ratio(CANDIDATE, BASELINE)
        return data


# -- the contenders ----------------------------------------------------------------------------------
def run_candidate(folder: Path, catalog: Catalog) -> dict[str, DAG]:
    return load_plan_dags(folder, catalog)


def run_same_graph(folder: Path, catalog: Catalog) -> dict[str, DAG]:
    """The factory without compensation tasks: exactly the baseline's graph."""
    return load_plan_dags(folder, catalog, compensate=False) if HAS_COMPENSATE else load_plan_dags(folder, catalog)


def run_baseline(folder: Path, catalog: Catalog) -> dict[str, DAG]:
    """What a DAG author would write by hand: read each JSON file and build the DAG directly."""
    dags: dict[str, DAG] = {}
    for path in sorted(folder.glob("*.json")):
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
        dag = build_baseline_dag(data, catalog)
        dags[dag.dag_id] = dag
    return dags


def build_baseline_dag(data: dict[str, Any], catalog: Catalog, *, saga: bool = False) -> DAG:
    with DAG(
        dag_id=data["id"],
        # a data pipeline written by hand schedules data intervals, as the factory does
        schedule=CronDataIntervalTimetable(data["schedule"], timezone="UTC") if data.get("schedule") else None,
        start_date=DEFAULT_START_DATE,
        catchup=False,
        description=data["goal"],
        tags=[TAG],
        default_args={"retry_delay": RETRY_DELAY},
    ) as dag:
        tasks: dict[str, Any] = {}
        for step in data["steps"]:
            tool = catalog[step["tool"]]
            common: dict[str, Any] = {"task_id": step["id"], "retries": tool.default_retries}
            if tool.max_timeout_seconds:
                common["execution_timeout"] = timedelta(seconds=tool.max_timeout_seconds)
            if isinstance(tool, OperatorTool):
                assert tool.operator_class is not None
                tasks[step["id"]] = tool.operator_class(**dict(tool.fixed), **step["args"], **common)
            else:
                assert isinstance(tool, PythonTool)
                tasks[step["id"]] = PythonOperator(python_callable=tool.func, op_kwargs=step["args"], **common)
        for step in data["steps"]:
            for dependency in step.get("depends_on", []):
                tasks[dependency] >> tasks[step["id"]]
        if saga:
            _add_baseline_saga(data, catalog, tasks)
    return dag


def run_baseline_saga(folder: Path, catalog: Catalog) -> dict[str, DAG]:
    """The hand-written DAGs of the candidate's full graph: the baseline plus the same compensation tasks."""
    dags: dict[str, DAG] = {}
    for path in sorted(folder.glob("*.json")):
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
        dag = build_baseline_dag(data, catalog, saga=True)
        dags[dag.dag_id] = dag
    return dags


def _undo_noop(**_: Any) -> None:
    """The hand-written outcome task's callable: the benchmark only builds DAGs."""


def _add_baseline_saga(data: dict[str, Any], catalog: Catalog, tasks: dict[str, Any]) -> None:
    """What a DAG author would add by hand for compensation: the candidate's saga graph, task for task.

    A join after every step, one ``PythonOperator`` per compensable step calling its undo tool
    with the step's arguments, undo order edges to the nearest compensable ancestors, and an
    outcome task. The same trigger rules, retries and timeouts as the factory's saga.
    """
    compensable = [s for s in data["steps"] if catalog[s["tool"]].compensation is not None]
    if not compensable:
        return
    ancestors: dict[str, set[str]] = {}
    for step in data["steps"]:  # steps are in dependency order in the generated plans
        ancestors[step["id"]] = set().union(*({d} | ancestors[d] for d in step.get("depends_on", [])))
    compensable_ids = {s["id"] for s in compensable}
    with TaskGroup("saga"):
        steps_done = EmptyOperator(task_id="steps_done", trigger_rule=TriggerRule.ALL_DONE)
        list(tasks.values()) >> steps_done
        undo: dict[str, Any] = {}
        for step in compensable:
            compensation = catalog[step["tool"]].compensation
            assert compensation is not None
            undo_tool = catalog[compensation.tool]
            assert isinstance(undo_tool, PythonTool)
            limits: dict[str, Any] = {"retries": undo_tool.default_retries}
            if undo_tool.max_timeout_seconds:
                limits["execution_timeout"] = timedelta(seconds=undo_tool.max_timeout_seconds)
            undo[step["id"]] = PythonOperator(
                task_id=f"undo_{step['id']}",
                python_callable=undo_tool.func,
                op_kwargs=step["args"],
                trigger_rule=TriggerRule.ALL_DONE,
                **limits,
            )
            steps_done >> undo[step["id"]]
        for later in compensable:
            earlier = ancestors[later["id"]] & compensable_ids
            nearest = earlier - set().union(*(ancestors[a] for a in earlier)) if earlier else set()
            for sid in sorted(nearest):
                undo[later["id"]] >> undo[sid]
        outcome = PythonOperator(task_id="outcome", python_callable=_undo_noop, trigger_rule=TriggerRule.ALL_DONE)
        list(undo.values()) >> outcome
        steps_done >> outcome


def contenders() -> dict[str, Contender]:
    found: dict[str, Contender] = {CANDIDATE: run_candidate, BASELINE: run_baseline}
    if HAS_COMPENSATE:
        found[SAME_GRAPH] = run_same_graph
        found[BASELINE_SAGA] = run_baseline_saga
    return found


# -- measurement helpers -----------------------------------------------------------------------------
def _reset() -> None:
    """Drop what one round left behind so the next round starts from the same state."""
    DagContext.autoregistered_dags.clear()  # only filled while a DagBag parses a module, but be sure
    if DagContext.get_current() is not None:
        raise RuntimeError("a DAG context leaked out of a round")
    gc.collect()


def _timed(fn: Contender, folder: Path, catalog: Catalog, expected: int) -> tuple[float, float, int, dict[str, DAG]]:
    """Wall time (``perf_counter``), CPU time of this process (``process_time``), tasks and DAGs of one call."""
    _reset()
    cpu = time.process_time()
    start = time.perf_counter()
    dags = fn(folder, catalog)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    if len(dags) != expected:
        raise RuntimeError(f"{fn.__name__} built {len(dags)} DAGs, expected {expected}")
    return elapsed, cpu, sum(len(dag.task_dict) for dag in dags.values()), dags


def _peak(fn: Contender, folder: Path, catalog: Catalog) -> int:
    _reset()
    tracemalloc.start()
    try:
        dags = fn(folder, catalog)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del dags
    return peak


def _options(catalog: Catalog, compensate: bool) -> Any:
    """The factory's private options object, built by keyword so a new optional field does not break us."""
    wanted = {
        "catalog": catalog,
        "prefix": "",
        "limits": DEFAULT_LIMITS,
        "retry_delay": RETRY_DELAY,
        "start_date": DEFAULT_START_DATE,
        "tags": (),
        "default_args": {},
        "compensate": compensate,
    }
    accepted = inspect.signature(build._Options).parameters
    return build._Options(**{k: v for k, v in wanted.items() if k in accepted})


def _phases(folder: Path, catalog: Catalog) -> dict[str, float]:
    """Split the baseline and the candidate into phases with plain CPU-time timers, one pass each.

    Each part starts from an empty heap (the previous part's objects freed): the cost of
    Python's cyclic garbage collector grows with the number of live objects.
    """
    files = sorted(folder.glob("*.json"))
    _reset()
    t0 = time.process_time()
    documents = []
    for path in files:
        with path.open(encoding="utf-8") as handle:
            documents.append(json.load(handle))
    t1 = time.process_time()
    dags = [build_baseline_dag(data, catalog) for data in documents]
    t2 = time.process_time()
    del dags, documents
    _reset()
    t3 = time.process_time()
    plans: list[Plan] = []
    digests: list[str] = []
    for path in files:
        result = load_plan_file(path, catalog)
        assert result.ok and result.plan is not None and result.plan_hash, result.issues
        plans.append(result.plan)
        digests.append(result.plan_hash)
    t4 = time.process_time()
    for plan in plans:  # the same work validation did once per plan, timed on its own
        plan.hash  # noqa: B018
    t5 = time.process_time()
    for plan, digest, path in zip(plans, digests, files, strict=True):
        plan_doc(plan, digest, catalog.fingerprint, path.name)
        for step in plan.steps:
            step_doc(plan, digest, step, catalog[step.tool])
    t6 = time.process_time()
    plain = _options(catalog, compensate=False)
    compiled = zip(plans, digests, files, strict=True)
    dags = [compile_plan(plan, plain, source=path.name, digest=digest) for plan, digest, path in compiled]
    t7 = time.process_time()
    del dags
    _reset()
    phases = {
        "baseline: json.load": t1 - t0,
        "baseline: DAG + operators + deps": t2 - t1,
        "candidate: load_plan_file (read + validate + hash)": t4 - t3,
        "candidate:   of which the plan hash": t5 - t4,
        "candidate: compile_plan without saga": t7 - t6,
        "candidate:   of which plan_doc + step_doc": t6 - t5,
        "candidate:   of which DAG + operators + deps": (t7 - t6) - (t6 - t5),
    }
    if HAS_COMPENSATE:
        saga = _options(catalog, compensate=True)
        t8 = time.process_time()
        compiled = zip(plans, digests, files, strict=True)
        dags = [compile_plan(plan, saga, source=path.name, digest=digest) for plan, digest, path in compiled]
        t9 = time.process_time()
        del dags
        phases["candidate: compile_plan with saga (default)"] = t9 - t8
        phases["candidate:   of which the saga task group"] = (t9 - t8) - (t7 - t6)
    del plans
    _reset()
    return phases


def _profile(fn: Contender, folder: Path, catalog: Catalog, top: int) -> Profile:
    _reset()
    profiler = cProfile.Profile()
    profiler.enable()
    dags = fn(folder, catalog)
    profiler.disable()
    del dags
    stats = pstats.Stats(profiler)
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    result = Profile(total_s=stats.total_tt)  # type: ignore[attr-defined]
    for label, part, funcname in _PROFILE_PHASES:
        hits = [
            (calls, cumulative)
            for (file, _line, name), (_cc, calls, _tt, cumulative, _callers) in table.items()
            if name == funcname and part in file
        ]
        if hits:
            result.phases[label] = (sum(c for c, _ in hits), sum(t for _, t in hits))
    rows = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:top]
    for (file, line, name), (_cc, calls, tt, ct, _callers) in rows:
        result.top.append((f"{_short(file)}:{line}({name})", calls, tt, ct))
    return result


def _short(file: str) -> str:
    for marker in ("site-packages/", f"{Path(__file__).resolve().parents[1]}/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


# -- the benchmark -------------------------------------------------------------------------------------
def run(
    plans: int = 1000,
    rounds: int = 5,
    *,
    chunk_plans: int = 0,
    catalog: Catalog = orders_catalog,
    memory: bool = True,
    profile: bool = True,
    top: int = 25,
) -> FactoryResult:
    """Write the plans, warm up every contender, then run interleaved rounds (the order rotates).

    With ``chunk_plans`` the plans are split into folders of that many and the contenders take
    turns folder by folder (each round's DAGs are kept until the round ends, as in one call):
    the turns are short, so a load spike from another job hits every contender alike.
    """
    chunk = chunk_plans if 0 < chunk_plans < plans else plans
    result = FactoryResult(plans=plans, rounds=rounds, chunk_plans=chunk if chunk < plans else 0)
    runners = contenders()
    with tempfile.TemporaryDirectory(prefix="bench_factory_") as tmp:
        root = Path(tmp)
        folder = root / "plans"  # every plan, for the phase split, memory and profile runs
        write_plans(folder, plans)
        chunks: list[tuple[Path, int]] = [(folder, plans)]
        if chunk < plans:
            chunks = []
            for number, start in enumerate(range(0, plans, chunk)):
                count = min(chunk, plans - start)
                chunks.append((root / f"chunk_{number:04d}", count))
                write_plans(chunks[-1][0], count, start)
        warm = root / "warm"
        write_plans(warm, min(plans, 6), start=plans)  # first calls import croniter, operators, validators...
        for fn in runners.values():
            fn(warm, catalog)
        order = list(runners.items())
        for index in range(rounds):
            kept: list[dict[str, DAG]] = []  # in turns, a round's DAGs live until it ends, as in one call
            wall = dict.fromkeys(runners, 0.0)
            cpu = dict.fromkeys(runners, 0.0)
            tasks = dict.fromkeys(runners, 0)
            for number, (chunk_folder, count) in enumerate(chunks):
                turn = (index + number) % len(order)
                for name, fn in order[turn:] + order[:turn]:
                    seconds, cpu_seconds, built, dags = _timed(fn, chunk_folder, catalog, count)
                    wall[name] += seconds
                    cpu[name] += cpu_seconds
                    tasks[name] += built
                    if len(chunks) > 1:
                        kept.append(dags)
                    del dags  # whole-folder calls: nothing outlives its own call
            del kept
            for name in runners:
                timings = result.timings.setdefault(name, Timings())
                timings.wall_s.append(wall[name])
                timings.cpu_s.append(cpu[name])
                result.tasks[name] = tasks[name]
        if rounds:
            phase_runs = [_phases(folder, catalog) for _ in range(max(1, min(rounds, 3)))]
            result.phases_s = {key: statistics.median(run[key] for run in phase_runs) for key in phase_runs[0]}
        if memory:
            result.peak_bytes = {name: _peak(fn, folder, catalog) for name, fn in runners.items()}
        if profile:
            result.profiles = {name: _profile(runners[name], folder, catalog, top) for name in (CANDIDATE, BASELINE)}
    _reset()
    return result


def report(result: FactoryResult) -> str:
    ms = 1000.0
    how = f"turns of {result.chunk_plans} plans" if result.chunk_plans else "one call per contender per round"
    lines = [
        f"Benchmark 1: factory vs plain loop, {result.plans} plans x 10 steps, "
        f"{result.rounds} interleaved rounds ({how})"
    ]
    labels = {
        CANDIDATE: "load_plan_dags (default)",
        SAME_GRAPH: "compensate=False        ",
        BASELINE: "baseline json + DAG     ",
        BASELINE_SAGA: "baseline + same saga    ",
    }
    for name, timings in result.timings.items():
        lines.append(
            f"  {labels[name]}: median {timings.median_s * ms:9.1f} ms wall, {timings.cpu_median_s * ms:9.1f} ms CPU, "
            f"{result.tasks.get(name, 0)} tasks; rounds {[round(t * ms) for t in timings.wall_s]}"
        )
    for name in (CANDIDATE, SAME_GRAPH):
        if name not in result.timings:
            continue
        ratio = result.ratio(name)
        lines.append(
            f"  ratio {labels[name].strip()} / {labels[result.base_of(name)].strip()}: {ratio:.2f}x wall "
            "(per-round median "
            f"{result.paired_ratio(name):.2f}x, best rounds {result.min_ratio(name):.2f}x), "
            f"{result.cpu_ratio(name):.2f}x CPU (best rounds {result.cpu_min_ratio(name):.2f}x)"
            f"  target <= {TARGET_RATIO}x -> {'MET' if ratio <= TARGET_RATIO else 'NOT MET'}"
        )
    if result.base_of(CANDIDATE) != BASELINE:
        lines.append(
            f"  (informative) load_plan_dags (default) / baseline without the saga: "
            f"{result.ratio(CANDIDATE, BASELINE):.2f}x wall, {result.cpu_ratio(CANDIDATE, BASELINE):.2f}x CPU"
        )
    if result.peak_bytes:
        peaks = ", ".join(f"{name} {peak / 2**20:.1f} MiB" for name, peak in result.peak_bytes.items())
        ratios = ", ".join(
            f"{name}/{result.base_of(name)} {result.memory_ratio(name):.2f}x"
            for name in result.peak_bytes
            if name not in (BASELINE, BASELINE_SAGA)
        )
        lines.append(f"  peak memory (tracemalloc): {peaks}; ratio to baseline: {ratios}")
    if result.phases_s:
        lines.append("  phases (CPU time, plain timers, median of up to 3 passes):")
        lines += [f"    {name:50s} {seconds * ms:9.1f} ms" for name, seconds in result.phases_s.items()]
    cand, base = result.profiles.get(CANDIDATE), result.profiles.get(BASELINE)
    if cand is not None and base is not None:
        lines.append(
            f"  cProfile, one run each (inflated by the profiler): candidate {cand.total_s * ms:.0f} ms, "
            f"baseline {base.total_s * ms:.0f} ms"
        )
        lines.append(f"    {'phase (cumulative)':50s} {'candidate':>20s} {'baseline':>20s}")
        for label, _part, _name in _PROFILE_PHASES:
            cells = []
            for prof in (cand, base):
                calls, seconds = prof.phases.get(label, (0, 0.0))
                cells.append(f"{seconds * ms:8.1f} ms {seconds / prof.total_s:6.1%}" if calls else "-")
            lines.append(f"    {label:50s} {cells[0]:>20s} {cells[1]:>20s}")
        lines.append("  candidate: top functions by own time (tottime):")
        lines += [
            f"    {tt * ms:8.1f} ms own {ct * ms:8.1f} ms cum {calls:8d} calls  {where}"
            for where, calls, tt, ct in cand.top
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--plans", type=int, default=1000, help="number of 10-step plan files (default 1000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (default 5)")
    parser.add_argument(
        "--chunk-plans",
        type=int,
        default=0,
        help="take turns every N plans instead of one whole-folder call per contender (0: whole folder)",
    )
    parser.add_argument("--top", type=int, default=25, help="rows of the cProfile table (default 25)")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc peak-memory runs")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile runs")
    parser.add_argument("--json-out", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    result = run(
        args.plans,
        args.rounds,
        chunk_plans=args.chunk_plans,
        memory=not args.no_memory,
        profile=not args.no_profile,
        top=args.top,
    )
    print(report(result))
    if args.json_out:
        args.json_out.write_text(json.dumps(result.to_json(), indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
