"""Group a plan's steps into levels: a step runs one level after the deepest step it depends on.

Each level is one mapped task in the automation DAG, so independent steps run in parallel and
every step is its own task instance. The price: a step also waits for unrelated steps of the
level before it. The validator keeps plans within ``max_levels`` and ``max_parallel``.
"""

from __future__ import annotations

from typing import Any

from airflow_claude.plan.model import Plan


def plan_levels(plan: Plan) -> list[list[dict[str, Any]]]:
    """Steps (as JSON dicts) per level, level 1 first; plan order within a level."""
    level: dict[str, int] = {}
    pending = list(plan.steps)
    while pending:  # the plan is validated acyclic, so every pass places at least one step
        rest = []
        for step in pending:
            if all(dep in level for dep in step.depends_on):
                level[step.id] = 1 + max((level[d] for d in step.depends_on), default=0)
            else:
                rest.append(step)
        pending = rest
    depth = max(level.values(), default=0)
    return [[s.model_dump(mode="json") for s in plan.steps if level[s.id] == n] for n in range(1, depth + 1)]
