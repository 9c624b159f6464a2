"""Markdown shown in the Airflow UI: a plan's provenance on the DAG, a step's on its task."""

from __future__ import annotations

import re

from airflow_claude.catalog.tool import Tool
from airflow_claude.errors import PlanIssue
from airflow_claude.fingerprint import json_encoder
from airflow_claude.plan.model import Plan, Step

# Built once: ``json.dumps`` with options builds an encoder per call.
_STEP_JSON = json_encoder(", ", ": ")


def fenced(text: str, lang: str = "") -> str:
    """A code fence longer than any backtick run inside: plan text cannot break out of it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0) if "`" in text else 0
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text}\n{fence}"


def plan_doc(plan: Plan, plan_hash: str, catalog_fingerprint: str, source: str) -> str:
    provenance = plan.provenance.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    rows = [
        ("plan id", plan.id),
        ("plan hash", plan_hash),
        ("steps", str(len(plan.steps))),
        ("schedule", plan.schedule or "manual"),
        ("catalog fingerprint (now)", catalog_fingerprint),
        ("source", source),
    ]
    table = "\n".join(f"| {k} | `{v}` |" for k, v in rows)
    params = "\n\n**Params** (trigger form)\n\n" + fenced(_STEP_JSON(plan.params), "json") if plan.params else ""
    return (
        "### airflow-claude plan\n\n**Goal**\n\n"
        + fenced(plan.goal)
        + "\n\n| field | value |\n|---|---|\n"
        + table
        + params
        + "\n\n**Provenance**\n\n"
        + fenced(_STEP_JSON(provenance), "json")
    )


def step_doc(plan: Plan, plan_hash: str, step: Step, tool: Tool) -> str:
    """The step's tool, plan, dependencies and arguments, shown on its task in the UI."""
    text = f"### step `{step.id}`: tool `{tool.name}` v{tool.version} ({tool.side_effects})\n\n"
    if step.description:
        text += fenced(step.description) + "\n\n"
    after = ", ".join(f"`{d}`" for d in step.depends_on) or "nothing"
    where = ""
    if not tool.route.is_default:
        where = f"; runs on {tool.route.label()} (it stays queued until a worker there takes it)"
    return (
        text
        + f"plan `{plan.id}` `{plan_hash}`; runs after {after}{where}\n\n**Arguments**\n\n"
        + fenced(_STEP_JSON(step.args), "json")
    )


def invalid_doc(source: str, issues: list[PlanIssue]) -> str:
    lines = "\n".join(str(issue) for issue in issues)
    return (
        "### Invalid plan: nothing from it runs\n\n"
        f"Source: `{source}`. Fix the problems below; the other plans in the folder are unaffected.\n\n"
        + fenced(lines)
        + "\n\nCheck locally with `airflow-claude validate <file> --catalog <module:attr>`."
    )
