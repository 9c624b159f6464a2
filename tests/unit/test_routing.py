"""Per-tool routing: a tool names an Airflow queue (and executor); its steps and undos run there."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from airflow.serialization.serialized_objects import DagSerialization
from automation_kit import CATALOG, FakeTI, context, count, unwrite, write

from airflow_claude.automation import AutomationSettings, claude_automation
from airflow_claude.automation.contracts import (
    COMMITTED_KEY,
    DECISION_KEY,
    ROUTES_KEY,
    STEP_RECORD_KEY,
    CommittedPlan,
    Decision,
    Proposal,
    RoundReview,
    StepRecord,
    UndoTicket,
)
from airflow_claude.automation.steps import RunPlanStepOperator
from airflow_claude.catalog import Catalog, operator_tool, python_tool
from airflow_claude.catalog.route import Route
from airflow_claude.errors import CatalogError
from airflow_claude.examples.orders import catalog as orders_catalog
from airflow_claude.factory import load_plan_dags
from airflow_claude.plan.model import Plan

EXAMPLE_PLAN = Path(__file__).parents[2] / "dags" / "plans" / "nightly_orders_report.json"
SETTINGS = AutomationSettings(max_steps=6, max_replans=1, require_approval=False, review="on_failure")

# write and its undo need the warehouse; count stays on the default queue
ROUTED = Catalog(
    [dataclasses.replace(write, queue="warehouse"), dataclasses.replace(unwrite, queue="warehouse"), count],
    name="kit",
)
ROUTED_DAG = claude_automation("kit_routed", catalog=ROUTED, settings=SETTINGS)
PLAIN_DAG = claude_automation("kit_plain", catalog=CATALOG, settings=SETTINGS)

CHAIN = {
    "schema_version": "1",
    "id": "kit_plan",
    "goal": "Count one, write two.",
    "steps": [
        {"id": "tally", "tool": "count", "args": {"name": "alphabet"}},
        {"id": "first", "tool": "write", "args": {"name": "alpha"}, "depends_on": ["tally"]},
        {"id": "second", "tool": "write", "args": {"name": "beta"}, "depends_on": ["first"]},
        {
            "id": "last",
            "tool": "count",
            "args": {"name": {"$ref": "steps.second.output.name"}},
            "depends_on": ["second"],
        },
    ],
    "provenance": {"created_by": "claude:test"},
}


def test_a_route_is_deployment_not_contract() -> None:
    moved = Catalog([dataclasses.replace(t, queue="gpu") for t in CATALOG.values()], name="kit")
    assert moved.fingerprint == CATALOG.fingerprint  # reviewed plans stay valid when a tool moves
    assert moved["write"].route == Route("gpu") and CATALOG["write"].route.is_default
    assert moved.routes == [Route("gpu")] and CATALOG.routes == []


def test_bad_routes_are_refused_with_the_tool_and_field() -> None:
    with pytest.raises(CatalogError, match=r"tool 'odd': queue 'has space'"):

        @python_tool(name="odd", queue="has space")
        def odd() -> None:
            """Odd."""

    from airflow.providers.standard.operators.bash import BashOperator

    with pytest.raises(CatalogError, match=r"tool 'sh'.*\['queue'\].*on the tool"):
        operator_tool(BashOperator, name="sh", description="Shell.", params={}, fixed={"queue": "x"})
    a, b = dataclasses.replace(count, queue="a.b"), dataclasses.replace(write, queue="a_b")
    with pytest.raises(CatalogError, match="same task name 'a_b'"):
        Catalog([a, b, unwrite])


def test_compiled_steps_and_their_undos_run_on_their_tools_queue(tmp_path: Path) -> None:
    tools = [
        dataclasses.replace(t, queue="warehouse") if t.name in ("write_report", "delete_report") else t
        for t in orders_catalog.values()
    ]
    catalog = Catalog([*tools], name=orders_catalog.name)
    (tmp_path / EXAMPLE_PLAN.name).write_text(EXAMPLE_PLAN.read_text())
    dag = next(iter(load_plan_dags(tmp_path, catalog).values()))
    assert dag.get_task("write_revenue_report").queue == "warehouse"
    assert "queue 'warehouse'" in (dag.get_task("write_revenue_report").doc_md or "")
    assert dag.get_task("saga.undo_write_revenue_report").queue == "warehouse"
    assert dag.get_task("extract_orders").queue == "default"
    assert dag.get_task("saga.undo_notify_team").queue == "default"
    serialized = DagSerialization.to_dict(dag)
    again = DagSerialization.to_dict(next(iter(load_plan_dags(tmp_path, catalog).values())))
    assert json.dumps(serialized, sort_keys=True) == json.dumps(again, sort_keys=True)


def test_an_executor_goes_on_the_task_too(tmp_path: Path) -> None:
    tools = [
        dataclasses.replace(t, executor="CeleryExecutor") if t.name == "notify" else t for t in orders_catalog.values()
    ]
    (tmp_path / EXAMPLE_PLAN.name).write_text(EXAMPLE_PLAN.read_text())
    dag = next(iter(load_plan_dags(tmp_path, Catalog(tools, name="orders")).values()))
    assert dag.get_task("notify_team").executor == "CeleryExecutor" and dag.get_task("extract_orders").executor is None


def test_a_catalog_without_routes_builds_the_one_route_dag() -> None:
    ids = set(PLAIN_DAG.task_ids)
    assert "attempt_1.steps" in ids and "saga.undo" in ids
    assert not [t for t in ids if "route_" in t or t.startswith(("attempt_1.steps_", "saga.undo_"))]


def test_a_routed_catalog_gets_a_mapped_task_per_queue() -> None:
    steps = ROUTED_DAG.get_task("attempt_1.steps_warehouse")
    assert steps.queue == "warehouse" and steps.is_mapped
    assert ROUTED_DAG.get_task("attempt_1.steps").queue == "default"
    assert ROUTED_DAG.get_task("attempt_1.route_warehouse").upstream_task_ids == {"attempt_1.commit"}
    assert "attempt_1.steps_warehouse" in ROUTED_DAG.get_task("attempt_1.review").upstream_task_ids
    assert ROUTED_DAG.get_task("saga.undo_warehouse").queue == "warehouse"
    assert ROUTED_DAG.get_task("saga.route_warehouse").upstream_task_ids == {"saga.to_undo"}
    assert "saga.undo_warehouse" in ROUTED_DAG.get_task("report").upstream_task_ids


def commit(ti: FakeTI, dag: Any, doc: dict[str, Any], round_number: int = 1) -> tuple[list[Any], CommittedPlan]:
    plan = Plan.model_validate(doc)
    prefix = f"attempt_{round_number}"
    ti.xcom[(f"{prefix}.plan", None, "return_value")] = Proposal(
        plan=plan.model_dump(mode="json"), plan_hash=plan.hash, goal=plan.goal, model="m"
    ).dump()
    ti.xcom[(f"{prefix}.approve", None, DECISION_KEY)] = Decision(chosen_options=["Approve"], auto=True).dump()
    tickets = dag.get_task(f"{prefix}.commit").execute(context(ti.at(f"{prefix}.commit")))
    ti.xcom[(f"{prefix}.commit", None, "return_value")] = tickets
    return tickets, CommittedPlan.model_validate(ti.xcom[(f"{prefix}.commit", None, COMMITTED_KEY)])


def test_commit_sends_each_step_to_its_route_and_waits_cross_routes() -> None:
    ti = FakeTI()
    default, c = commit(ti, ROUTED_DAG, CHAIN)
    assert [t["step"]["id"] for t in default] == ["tally", "last"]
    assert c.locations == {
        "tally": ("attempt_1.steps", 0),
        "first": ("attempt_1.steps_warehouse", 0),
        "second": ("attempt_1.steps_warehouse", 1),
        "last": ("attempt_1.steps", 1),
    }
    routed = ti.xcom[("attempt_1.commit", None, ROUTES_KEY)]
    assert [t["step"]["id"] for t in routed["warehouse"]] == ["first", "second"]
    handed = ROUTED_DAG.get_task("attempt_1.route_warehouse").execute(context(ti.at("attempt_1.route_warehouse")))
    assert handed == routed["warehouse"]
    assert [tuple(a) for a in default[1]["after"]] == [("attempt_1.steps_warehouse", 1)]


def test_a_routed_step_reads_and_waits_for_a_producer_on_another_route() -> None:
    from airflow.sdk.exceptions import TaskDeferred

    ti = FakeTI()
    default, _ = commit(ti, ROUTED_DAG, CHAIN)
    op = RunPlanStepOperator(task_id="attempt_1.steps", automation_id="kit_routed", round_number=1, ticket=default[1])
    ti.states[("attempt_1.steps_warehouse", 1)] = "running"
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(ti.at("attempt_1.steps", 1)))
    assert deferred.value.trigger.instances == [["attempt_1.steps_warehouse", 1]]
    ti.states[("attempt_1.steps_warehouse", 1)] = "success"
    ti.xcom[("attempt_1.steps_warehouse", 1, "return_value")] = {"key": "k", "name": "beta"}
    assert op.execute(context(ti.at("attempt_1.steps", 1))) == {"n": 4}
    record = StepRecord.model_validate(ti.xcom[("attempt_1.steps", 1, STEP_RECORD_KEY)])
    assert record.status == "success"


def test_undos_go_to_the_compensating_tools_route_newest_first() -> None:
    ti = FakeTI()
    _, c = commit(ti, ROUTED_DAG, CHAIN)
    for step_id, (task_id, index) in c.locations.items():
        ti.states[(task_id, index)] = "success"
        ti.xcom[(task_id, index, "return_value")] = {"key": f"ik_{step_id}", "name": step_id, "n": 1}
    ti.xcom[("attempt_1.review", None, "return_value")] = RoundReview(
        verdict="escalate", reason="r", plan_id=c.plan["id"], plan_hash=c.plan_hash
    ).dump()
    default = ROUTED_DAG.get_task("saga.to_undo").execute(context(ti.at("saga.to_undo")))
    assert default == []  # unwrite runs on the warehouse queue
    listed = [UndoTicket.model_validate(t) for t in ti.xcom[("saga.to_undo", None, ROUTES_KEY)]["warehouse"]]
    assert [(t.step["id"], t.task, t.index) for t in listed] == [
        ("second", "saga.undo_warehouse", 0),
        ("first", "saga.undo_warehouse", 1),
    ]
    assert listed[1].after == [("saga.undo_warehouse", 0)]  # the step that used first's output is undone first


def test_the_review_names_the_queue_of_a_step_that_never_ran() -> None:
    ti = FakeTI()
    _, c = commit(ti, ROUTED_DAG, CHAIN)
    for step_id in ("tally", "first"):
        task_id, index = c.locations[step_id]
        ti.xcom[(task_id, index, STEP_RECORD_KEY)] = StepRecord(step_id=step_id, tool="t", status="success").dump()
    from airflow_claude.automation.review import step_summaries

    records = {sid: ti.xcom.get((*c.locations[sid], STEP_RECORD_KEY)) for sid in ("tally", "first", "second", "last")}
    summaries = {s["id"]: s for s in step_summaries(c.plan, records, 4000, routes={"write": Route("warehouse")})}
    assert summaries["second"]["queue"] == "warehouse" and summaries["second"]["status"] == "not_run"
    assert "queue 'warehouse'" in summaries["second"]["error"]
    assert summaries["first"]["queue"] == "warehouse" and "error" not in summaries["first"]
    assert "queue" not in summaries["tally"]


def test_the_routed_automation_serializes_the_same_twice() -> None:
    again = claude_automation("kit_routed", catalog=ROUTED, settings=SETTINGS)
    first = json.dumps(DagSerialization.to_dict(ROUTED_DAG), sort_keys=True)
    assert first == json.dumps(DagSerialization.to_dict(again), sort_keys=True)
