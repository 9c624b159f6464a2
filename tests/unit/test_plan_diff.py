"""What changed between two plan versions, as the run page's version chain shows it."""

from __future__ import annotations

import copy
from typing import Any

from airflow_claude.plan.diff import plan_changes


def plan() -> dict[str, Any]:
    return {
        "schema_version": "1",
        "id": "orders_v1",
        "goal": "Report revenue",
        "params": {},
        "steps": [
            {"id": "extract", "tool": "query", "args": {"sql": "select 1", "opts": {"limit": 10}}, "depends_on": []},
            {"id": "notify", "tool": "notify", "args": {"channel": "#data"}, "depends_on": ["extract"]},
        ],
    }


def test_alike_plans_have_no_change_whatever_the_order_of_dependencies() -> None:
    same = copy.deepcopy(plan())
    same["id"] = "orders_v2"  # a new id is a new version, not a change in what runs
    assert plan_changes(plan(), same) == []


def test_each_change_is_one_line_naming_the_step_and_the_path() -> None:
    after = copy.deepcopy(plan())
    after["goal"] = "Report revenue by region"
    after["steps"][0]["args"]["opts"]["limit"] = 100
    after["steps"][0]["args"]["region"] = "emea"
    after["steps"][1]["tool"] = "notify_v2"
    after["steps"][1]["retries"] = 2
    after["steps"].append({"id": "check", "tool": "check_quality", "args": {}, "depends_on": ["extract"]})
    after["steps"][1]["depends_on"] = ["check", "extract"]
    assert plan_changes(plan(), after) == [
        'goal: "Report revenue" -> "Report revenue by region"',
        "added step check (check_quality)",
        "changed step extract: args.opts.limit: 10 -> 100",
        'changed step extract: args.region: (none) -> "emea"',
        "changed step notify: tool: notify -> notify_v2",
        'changed step notify: depends_on: ["extract"] -> ["check", "extract"]',
        "changed step notify: retries: null -> 2",
    ]
    assert plan_changes(after, plan())[1] == "removed step check (check_quality)"


def test_long_values_are_cut_and_a_type_change_counts() -> None:
    after = copy.deepcopy(plan())
    after["steps"][0]["args"]["sql"] = "select " + "x, " * 100
    after["steps"][1]["args"]["channel"] = 1
    lines = plan_changes(plan(), after)
    assert len(lines) == 2 and lines[0].endswith("…") and len(lines[0]) < 200
    assert lines[1] == 'changed step notify: args.channel: "#data" -> 1'
    one = copy.deepcopy(plan())
    one["steps"][1]["args"]["channel"] = True
    two = copy.deepcopy(plan())
    two["steps"][1]["args"]["channel"] = 1
    assert plan_changes(one, two) == ["changed step notify: args.channel: true -> 1"]
