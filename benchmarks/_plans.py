"""Plan generators shared by the benchmarks: valid plans for the example ``orders`` catalog.

Every generated plan is valid against :data:`airflow_claude.examples.orders.catalog` (the
smoke test checks it). Shapes mix chains, diamonds (fan-out then fan-in) and wide fan-outs,
and arguments use ``{"$ref": "steps.<id>.output.<key>"}`` references like the example plan
``dags/plans/nightly_orders_report.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

Step = dict[str, Any]
PlanDict = dict[str, Any]

SHAPES: tuple[str, ...] = ("chain", "diamond", "fan")
_SCHEDULES: tuple[str | None, ...] = ("0 2 * * *", "@daily", None, "30 6 * * 1-5")
_EPOCH = date(2024, 1, 1)
_BY: tuple[str, ...] = ("region", "product", "order_date")


def _ref(step_id: str, *path: str) -> dict[str, str]:
    return {"$ref": ".".join(("steps", step_id, "output", *path))}


class _Builder:
    """Appends steps with unique ids (``prefix + name``) and remembers the latest of each kind."""

    def __init__(self, prefix: str = "", seed: int = 0) -> None:
        self.prefix = prefix
        self.seed = seed
        self.steps: list[Step] = []

    def _add(self, name: str, tool: str, args: dict[str, Any], deps: list[str], description: str = "") -> str:
        sid = self.prefix + name
        step: Step = {"id": sid, "tool": tool, "args": args}
        if deps:
            step["depends_on"] = deps
        if description:
            step["description"] = description
        self.steps.append(step)
        return sid

    def query(self, name: str, deps: list[str]) -> str:
        # distinct arguments in every plan: a cache keyed by arguments must not flatter the numbers
        start = _EPOCH + timedelta(days=self.seed + len(self.steps))
        end = start + timedelta(days=27)
        args = {"start_date": start.isoformat(), "end_date": end.isoformat(), "status": "paid"}
        return self._add(name, "query_orders", args, deps, f"Paid orders from {start} to {end}.")

    def check(self, name: str, source: str, deps: list[str]) -> str:
        args = {"rows": _ref(source, "rows"), "min_rows": 1 + self.seed + len(self.steps)}
        return self._add(name, "check_quality", args, deps)

    def aggregate(self, name: str, source: str, deps: list[str]) -> str:
        args = {"rows": _ref(source, "rows"), "by": _BY[(self.seed + len(self.steps)) % len(_BY)]}
        return self._add(name, "aggregate_revenue", args, deps)

    def report(self, name: str, aggregate: str, quality: str, deps: list[str]) -> str:
        args = {
            "title": f"Revenue report {self.seed}/{self.prefix}{name}",
            "aggregate": _ref(aggregate),
            "quality": _ref(quality),
        }
        return self._add(name, "write_report", args, deps, "Markdown revenue report.")

    def notify(self, name: str, report: str | None, deps: list[str]) -> str:
        args: dict[str, Any] = {
            "channel": "#data-team",
            "message": f"Plan {self.seed}, step {self.prefix}{name}: done.",
        }
        if report is not None:
            args["report_path"] = _ref(report, "path")
        return self._add(name, "notify", args, deps)

    def sql(self, name: str, deps: list[str]) -> str:
        table = f"summary_{self.seed}_{len(self.steps)}"
        args = {
            "sql": f"CREATE TABLE IF NOT EXISTS {table} AS SELECT order_date, SUM(quantity * unit_price) AS revenue"
            " FROM orders WHERE status = 'paid' GROUP BY order_date"
        }
        return self._add(name, "run_sql", args, deps)


def chain_steps(b: _Builder, length: int, after: list[str]) -> str:
    """A straight chain of ``length`` steps (query, check, aggregate, report, notify, sql, repeat); returns the tail."""
    last_query = last_check = last_agg = last_report = None
    deps = list(after)
    tail = ""
    for i in range(length):
        kind = i % 6
        name = f"s{i:02d}"
        if kind == 0 or last_query is None:
            tail = last_query = b.query(name, deps)
        elif kind == 1:
            tail = last_check = b.check(name, last_query, deps)
        elif kind == 2:
            tail = last_agg = b.aggregate(name, last_query, deps)
        elif kind == 3 and last_agg is not None and last_check is not None:
            tail = last_report = b.report(name, last_agg, last_check, deps)
        elif kind == 4:
            tail = b.notify(name, last_report, deps)
        else:
            tail = b.sql(name, deps)
        deps = [tail]
    return tail


def diamond_steps(b: _Builder, after: list[str]) -> str:
    """Ten steps: one query fans out to four, two reports fan in, two notifies, one final sql."""
    q1 = b.query("q1", after)
    c1 = b.check("c1", q1, [q1])
    a1 = b.aggregate("a1", q1, [q1])
    a2 = b.aggregate("a2", q1, [q1])
    s1 = b.sql("s1", [q1])
    r1 = b.report("r1", a1, c1, [c1, a1])
    r2 = b.report("r2", a2, c1, [c1, a2])
    n1 = b.notify("n1", r1, [r1, s1])
    n2 = b.notify("n2", r2, [r2])
    return b.sql("s2", [n1, n2])


def fan_steps(b: _Builder, after: list[str], width: int = 7, fan_in: int = 6) -> str:
    """``width + 3`` steps: one query fans out to ``width`` steps, a report, then a notify waits for many."""
    q1 = b.query("q1", after)
    children: list[str] = []
    checks: list[str] = []
    aggs: list[str] = []
    for i in range(width):
        name = f"w{i:02d}"
        if i % 3 == 0:
            checks.append(b.check(name, q1, [q1]))
            children.append(checks[-1])
        elif i % 3 == 1:
            aggs.append(b.aggregate(name, q1, [q1]))
            children.append(aggs[-1])
        else:
            children.append(b.sql(name, [q1]))
    r1 = b.report("r1", aggs[0], checks[0], [checks[0], aggs[0]])
    waits = [c for c in children if c not in (checks[0], aggs[0])][-(fan_in - 1) :]
    return b.notify("n1", r1, [r1, *waits])


def wide_steps(b: _Builder, after: list[str]) -> str:
    """Forty steps: a fan-out of 37 (within max_fan_out=64) and a fan-in of 31 (within max_fan_in=32)."""
    return fan_steps(b, after, width=37, fan_in=31)


_TEN: dict[str, Callable[[_Builder, list[str]], str]] = {
    "chain": lambda b, after: chain_steps(b, 10, after),
    "diamond": diamond_steps,
    "fan": fan_steps,
}


def make_plan(index: int, shape: str | None = None) -> PlanDict:
    """Plan number ``index``: 10 steps of one of :data:`SHAPES` (chosen by index when not given)."""
    shape = shape or SHAPES[index % len(SHAPES)]
    b = _Builder(seed=index)
    _TEN[shape](b, [])
    return _document(f"bench_{shape}_{index:05d}", b.steps, _SCHEDULES[index % len(_SCHEDULES)])


def write_plans(folder: Path, count: int, start: int = 0) -> list[Path]:
    """Write plans ``start`` .. ``start + count - 1`` as ``<id>.json`` (indented, like a reviewed plan file)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(start, start + count):
        plan = make_plan(index)
        path = folder / f"{plan['id']}.json"
        path.write_text(json.dumps(plan, indent=2), encoding="utf-8")
        paths.append(path)
    return paths


def big_plan(n_steps: int, plan_id: str = "bench_big") -> PlanDict:
    """One plan of exactly ``n_steps`` steps: blocks (chain, diamond, fan, wide) chained one after another.

    Each block's first step waits for the previous block's last one, so the plan is one DAG
    with long dependency chains (depth about half the step count), fan-outs up to 37 and
    fan-ins up to 31, and references to ancestors in every block.
    """
    steps: list[Step] = []
    after: list[str] = []
    block = 0
    cycle = (("chain", 10), ("diamond", 10), ("fan", 10), ("wide", 40))
    while len(steps) < n_steps:
        remaining = n_steps - len(steps)
        shape, size = cycle[block % len(cycle)]
        b = _Builder(prefix=f"b{block:04d}_", seed=block * 64)
        if size > remaining:
            tail = chain_steps(b, remaining, after)
        elif shape == "wide":
            tail = wide_steps(b, after)
        else:
            tail = _TEN[shape](b, after)
        steps.extend(b.steps)
        after = [tail]
        block += 1
    return _document(plan_id, steps, "@daily")


def _document(plan_id: str, steps: list[Step], schedule: str | None) -> PlanDict:
    return {
        "schema_version": "1",
        "id": plan_id,
        "goal": f"Benchmark plan {plan_id}: read orders, check them, aggregate revenue, report and notify.",
        "schedule": schedule,
        "provenance": {"created_by": "human:benchmark", "created_at": "2026-11-20T09:00:00Z"},
        "steps": steps,
    }
