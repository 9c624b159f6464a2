"""The load suite's 20-step plan: four regions read, checked and reported, then a summary, a notice, a dashboard.

One graph serves the compiled plan file, the offline Claude's run-time plan and the end-to-end
overhead benchmark (``benchmarks/bench_celery_overhead.py``), so all of them run the same tool calls.
Levels: extract -> check/aggregate -> write_<region> and combine -> write_summary -> notify -> publish
(6 levels, fan-out 2, fan-in 5); 7 of the 20 steps are mutating (one effect each).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REGIONS = ("emea", "amer", "apac", "latam")
COMPILED = "load_orders"
MONTH = "2026-10"


def _ref(step: str, path: str) -> dict[str, str]:
    return {"$ref": f"steps.{step}.output.{path}"}


def steps() -> list[dict[str, Any]]:
    """The 20 steps (plan order)."""
    out: list[dict[str, Any]] = []
    for region in REGIONS:
        out.append({"id": f"extract_{region}", "tool": "query_orders", "args": {"region": region, "month": MONTH}})
    for region in REGIONS:
        rows = _ref(f"extract_{region}", "rows")
        out.append(
            {
                "id": f"check_{region}",
                "tool": "check_quality",
                "depends_on": [f"extract_{region}"],
                "args": {"rows": rows, "min_rows": 10},
            }
        )
        out.append(
            {
                "id": f"aggregate_{region}",
                "tool": "aggregate_revenue",
                "depends_on": [f"extract_{region}"],
                "args": {"rows": rows},
            }
        )
    for region in REGIONS:
        out.append(
            {
                "id": f"write_{region}",
                "tool": "write_report",
                "depends_on": [f"check_{region}", f"aggregate_{region}"],
                "args": {
                    "title": f"Revenue {region}, {MONTH}",
                    "total": _ref(f"aggregate_{region}", "total"),
                    "passed": _ref(f"check_{region}", "passed"),
                },
            }
        )
    out.append(
        {
            "id": "combine",
            "tool": "combine_totals",
            "depends_on": [f"aggregate_{region}" for region in REGIONS],
            "args": {"totals": [_ref(f"aggregate_{region}", "total") for region in REGIONS]},
        }
    )
    out.append(
        {
            "id": "write_summary",
            "tool": "write_report",
            "depends_on": ["combine", *(f"write_{region}" for region in REGIONS)],
            "args": {"title": f"Revenue, all regions, {MONTH}", "total": _ref("combine", "total"), "passed": True},
        }
    )
    out.append(
        {
            "id": "notify",
            "tool": "notify",
            "depends_on": ["write_summary"],
            "args": {
                "channel": "#data",
                "message": "The monthly revenue reports are ready.",
                "report_key": _ref("write_summary", "effect_key"),
            },
        }
    )
    out.append(
        {
            "id": "publish",
            "tool": "publish_dashboard",
            "depends_on": ["notify"],
            "args": {"report_key": _ref("write_summary", "effect_key")},
        }
    )
    return out


#: Step ids whose tool writes an effect (one row in the effects ledger per run).
MUTATING = (*(f"write_{region}" for region in REGIONS), "write_summary", "notify", "publish")


def plan(plan_id: str = COMPILED) -> dict[str, Any]:
    """The compiled plan file's content (no schedule: manual runs only)."""
    return {
        "schema_version": "1",
        "id": plan_id,
        "goal": "Report last month's revenue per region and in all, tell the team, publish the dashboard.",
        "provenance": {"created_by": "human:load-suite", "created_at": "2026-12-04T00:00:00Z"},
        "steps": steps(),
    }


def write_plan(folder: Path, plan_id: str = COMPILED) -> Path:
    """Write ``<folder>/<plan_id>.json``; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{plan_id}.json"
    path.write_text(json.dumps(plan(plan_id), indent=2) + "\n", encoding="utf-8")
    return path
