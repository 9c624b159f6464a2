"""The plan cache's stores: Airflow Variables (shared by every worker), a folder, and what happens when they fail."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from airflow_claude.catalog import Catalog
from airflow_claude.examples.orders import catalog
from airflow_claude.planner import DEFAULT_MODEL, CallPolicy, ClaudePlanner, ModelGateway, PlanCache
from airflow_claude.planner.cache import VARIABLE_PREFIX, VARIABLES
from airflow_claude.testing import FakeClaude

STEPS = json.loads((Path(__file__).parents[2] / "dags" / "plans" / "nightly_orders_report.json").read_text())["steps"]
GOAL = "Report October revenue by region and tell the data team."
FAST = CallPolicy(attempts=3, retry_after_cap=2.0, base_backoff=0.05, timeout=5.0)


class Variables:
    """The metadata database's Variable table as two workers would see it: one dict for all."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.descriptions: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str, description: str) -> None:
        self.values[key] = value
        self.descriptions[key] = description


class Down:
    """A store whose every call fails, as when the API server cannot be reached."""

    def get(self, key: str) -> str | None:
        raise ConnectionError("execution API unreachable")

    def set(self, key: str, value: str, description: str) -> None:
        raise ConnectionError("execution API unreachable")


def planner(fake: FakeClaude, cache: PlanCache, the_catalog: Catalog = catalog) -> ClaudePlanner:
    return ClaudePlanner(ModelGateway(fake.client(), DEFAULT_MODEL, policy=FAST), the_catalog, cache=cache)


def test_a_plan_stored_by_one_worker_is_a_hit_with_zero_calls_on_another(fake_claude: FakeClaude) -> None:
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS})
    table = Variables()
    first = planner(fake_claude, PlanCache(VARIABLES, store=table)).plan(GOAL)
    assert not first.cached and len(fake_claude.message_requests()) == 1
    [(key, value)] = table.values.items()
    assert re.fullmatch(VARIABLE_PREFIX + "[0-9a-f]{64}", key) and len(key) <= 250  # Airflow's key limit
    assert json.loads(value)["plan"]["id"] == first.plan.id
    assert first.plan.id in table.descriptions[key] and "delete" in table.descriptions[key]
    fake_claude.clear_requests()
    again = planner(fake_claude, PlanCache(VARIABLES, store=table)).plan(GOAL)  # another process, same table
    assert again.cached and again.calls == [] and fake_claude.requests == []
    assert again.plan.hash == first.plan.hash


def test_a_near_miss_or_a_tampered_variable_is_never_taken(fake_claude: FakeClaude) -> None:
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS})
    table = Variables()
    planner(fake_claude, PlanCache(VARIABLES, store=table)).plan(GOAL)
    changed = Catalog([replace(t, version="2") if n == "notify" else t for n, t in catalog.items()], name="orders")
    fake_claude.clear_requests()
    assert not planner(fake_claude, PlanCache(VARIABLES, store=table), changed).plan(GOAL).cached
    assert len(table.values) == 2  # one entry per catalog
    for key, value in list(table.values.items()):
        stored = json.loads(value)
        stored["key_material"]["goal"] = "something else"
        table.values[key] = json.dumps(stored)
    assert not planner(fake_claude, PlanCache(VARIABLES, store=table)).plan(GOAL).cached
    for key in table.values:
        table.values[key] = "{not json"
    assert not planner(fake_claude, PlanCache(VARIABLES, store=table)).plan(GOAL).cached


def test_an_unreachable_store_costs_a_planning_call_never_the_plan(
    fake_claude: FakeClaude, caplog: pytest.LogCaptureFixture
) -> None:
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS})
    with caplog.at_level(logging.WARNING, logger="airflow_claude.planner.cache"):
        result = planner(fake_claude, PlanCache(VARIABLES, store=Down())).plan(GOAL)
    assert not result.cached and len(result.plan.steps) == len(STEPS)
    messages = [r.getMessage() for r in caplog.records]
    assert any("unreadable" in m for m in messages)
    assert any(f"cannot store plan {result.plan.id}" in m for m in messages)


def test_the_default_store_reads_airflow_variables_through_the_task_sdk(
    fake_claude: FakeClaude, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside a task the Task SDK reads Variables from Airflow's secrets backends (here AIRFLOW_VAR_*)."""
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS})
    table = Variables()
    first = planner(fake_claude, PlanCache(VARIABLES, store=table)).plan(GOAL)
    [(key, value)] = table.values.items()
    monkeypatch.setenv(f"AIRFLOW_VAR_{key.upper()}", value)
    fake_claude.clear_requests()
    again = planner(fake_claude, PlanCache(VARIABLES)).plan(GOAL)
    assert again.cached and fake_claude.requests == [] and again.plan.hash == first.plan.hash


def test_a_folder_still_works_and_an_unwritable_one_is_logged_not_raised(
    fake_claude: FakeClaude, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS})
    cache = PlanCache(str(tmp_path / "plans"))
    assert isinstance(cache.root, Path)
    planner(fake_claude, cache).plan(GOAL)
    [entry] = (tmp_path / "plans").glob("*.json")
    assert re.fullmatch("[0-9a-f]{64}", entry.stem) and planner(fake_claude, cache).plan(GOAL).cached
    (tmp_path / "a_file").write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="airflow_claude.planner.cache"):
        result = planner(fake_claude, PlanCache(tmp_path / "a_file" / "plans")).plan(GOAL)
    assert not result.cached and any("cannot store plan" in r.getMessage() for r in caplog.records)


def test_the_sentinel_is_not_read_as_a_folder_or_an_url() -> None:
    cache: Any = PlanCache(VARIABLES)
    assert cache.root is None and VARIABLES == "airflow-variables"
    assert isinstance(PlanCache("airflow-variables-folder").root, Path)
