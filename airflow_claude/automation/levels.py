"""Group a plan's steps into levels: a step runs one level after the deepest step it depends on.

Each level is one mapped task in the automation DAG, so independent steps run in parallel and
every step is its own task instance. The price: a step also waits for unrelated steps of the
level before it. The validator keeps plans within ``max_levels`` and ``max_parallel``.
"""

from __future__ import annotations

from typing import Any

from airflow_claude.plan import graph
from airflow_claude.plan.model import Plan


def plan_levels(plan: Plan) -> list[list[dict[str, Any]]]:
    """Steps (as JSON dicts) per level, level 1 first; plan order within a level."""
    by_id = {step.id: step for step in plan.steps}
    placed = graph.levels({step.id: step.depends_on for step in plan.steps})
    return [[by_id[sid].model_dump(mode="json") for sid in level] for level in placed]
