"""The load figures as markdown: what ran, the promises (terminal states, duplicates, lost outputs), the timings."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime

from .deployment import Size
from .measure import percentile
from .runner import Figures


def machine() -> str:
    cpus = len(os.sched_getaffinity(0))
    return f"{platform.system()} {platform.machine()}, {cpus} CPUs, Python {platform.python_version()}"


def _p(values: list[float], unit: str = "s", digits: int = 1) -> tuple[str, str, str]:
    if not values:
        return ("-", "-", "-")
    return tuple(f"{v:.{digits}f} {unit}" for v in (percentile(values, 50), percentile(values, 95), max(values)))  # type: ignore[return-value]


def render(figures: Figures, size: Size, timings: dict[str, float]) -> str:
    runs = figures.runs
    compiled = [r for r in runs if r.kind == "compiled"]
    auto = [r for r in runs if r.kind == "automation"]
    right = figures.total("right")
    delays_all = figures.delays.get("compiled", []) + figures.delays.get("automation", [])
    workers = ", ".join(f"{k} {v}" for k, v in sorted(figures.per_worker.items())) or "-"
    written = f"{figures.total('effects')} (writes absorbed by the key: {figures.total('absorbed')})"
    rows = [
        ("runs triggered at once", f"{len(runs)} ({len(compiled)} compiled, {len(auto)} automation), 20 steps each"),
        ("right terminal state (success, 20/20 steps; automation report `succeeded`)", f"{right}/{len(runs)}"),
        ("duplicated effects", str(figures.total("duplicates"))),
        ("lost outputs", str(figures.total("lost"))),
        ("effects written (7 mutating steps a run)", written),
        ("Airflow retries", str(figures.total("retries"))),
        ("task instances executed on a worker", str(figures.executed)),
        ("task instances run per Celery worker (TI `hostname`)", workers),
        ("first trigger -> last run end", f"{figures.window_s:.0f} s"),
        ("**runs per minute**", f"**{figures.runs_per_minute:.2f}**"),
    ]
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}; CeleryExecutor, 2 workers x "
        f"{size.worker_concurrency} slots, parallelism {size.parallelism}, Redis broker, PostgreSQL metadata DB "
        "and result backend, triggerer.",
        "",
        "| figure | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in rows),
        "",
        "| timing | p50 | p95 | max | n |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values, unit, digits in (
        ("step queue delay, all steps (TI `start_date - queued_when`)", delays_all, "s", 2),
        ("step queue delay, compiled runs", figures.delays.get("compiled", []), "s", 2),
        ("step queue delay, automation runs", figures.delays.get("automation", []), "s", 2),
        ("step wait from `scheduled_when` (incl. waiting for a free slot)", figures.slot_waits, "s", 1),
        ("run wall (trigger -> end), compiled", figures.walls("compiled"), "s", 0),
        ("run wall (trigger -> end), automation", figures.walls("automation"), "s", 0),
        ("scheduler loop (`scheduler.scheduler_loop_duration`, StatsD)", figures.loop_ms, "ms", 0),
    ):
        p50, p95, top = _p(values, unit, digits)
        lines.append(f"| {name} | {p50} | {p95} | {top} | {len(values)} |")
    if figures.delays_left_out:
        lines.append("")
        lines.append(
            f"{figures.delays_left_out} run-time step TIs left out of the queue delay: they deferred and were "
            "queued again after their first start."
        )
    lines += ["", "Timings: " + "; ".join(f"{k} {v:.0f} s" for k, v in timings.items())]
    return "\n".join(lines)
