"""Each automation task's logic on typed payloads, without a running Airflow (``automation_kit``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk import DAG, Param
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, DownstreamTasksSkipped, TaskDeferred
from automation_kit import CALLS, CATALOG, FakeTI, context

from airflow_claude.automation import AutomationSettings, claude_automation, claude_automation_group
from airflow_claude.automation.approval import PlanApprovalOperator
from airflow_claude.automation.commit import step_tickets
from airflow_claude.automation.contracts import (
    COMMITTED_KEY,
    DECISION_KEY,
    GOAL_KEY,
    REPORT_KEY,
    STEP_RECORD_KEY,
    UNDO_RECORD_KEY,
    CommittedPlan,
    Decision,
    Proposal,
    RoundReview,
    StepRecord,
    UndoRecord,
    UndoTicket,
)
from airflow_claude.automation.saga import UndoStepOperator
from airflow_claude.automation.steps import RunPlanStepOperator
from airflow_claude.automation.waiting import InstancesFinishedTrigger
from airflow_claude.plan.model import Plan

SETTINGS = AutomationSettings(max_steps=6, max_replans=1, require_approval=False, review="on_failure")
DAG_ID = "kit_dag"
DAG_UNDER_TEST = claude_automation(DAG_ID, catalog=CATALOG, settings=SETTINGS)


def plan_doc(*steps: dict[str, Any], plan_id: str = "kit_plan") -> dict[str, Any]:
    return {
        "schema_version": "1",
        "id": plan_id,
        "goal": "Write two things and count one.",
        "steps": list(steps),
        "provenance": {"created_by": "claude:test"},
    }


def step(step_id: str, tool: str, args: dict[str, Any], after: list[str] | None = None) -> dict[str, Any]:
    return {"id": step_id, "tool": tool, "args": args, "depends_on": after or []}


CHAIN = plan_doc(
    step("first", "write", {"name": "alpha"}),
    step("second", "write", {"name": {"$ref": "steps.first.output.name"}}, ["first"]),
    step("tally", "count", {"name": "alphabet"}),
)


def task(task_id: str) -> Any:
    return DAG_UNDER_TEST.get_task(task_id)


def proposed(ti: FakeTI, doc: dict[str, Any], round_number: int = 1) -> Plan:
    plan = Plan.model_validate(doc)
    proposal = Proposal(plan=plan.model_dump(mode="json"), plan_hash=plan.hash, goal=plan.goal, model="m")
    ti.xcom[(f"attempt_{round_number}.plan", None, "return_value")] = proposal.dump()
    ti.xcom[(f"attempt_{round_number}.plan", None, GOAL_KEY)] = plan.goal
    return plan


def committed(ti: FakeTI, doc: dict[str, Any], round_number: int = 1) -> CommittedPlan:
    proposed(ti, doc, round_number)
    ti.xcom[(f"attempt_{round_number}.approve", None, DECISION_KEY)] = Decision(
        chosen_options=["Approve"], auto=True
    ).dump()
    tickets = task(f"attempt_{round_number}.commit").execute(context(ti.at(f"attempt_{round_number}.commit")))
    ti.xcom[(f"attempt_{round_number}.commit", None, "return_value")] = tickets
    value = ti.xcom[(f"attempt_{round_number}.commit", None, COMMITTED_KEY)]
    return CommittedPlan.model_validate(value)


def run_step_instance(ti: FakeTI, c: CommittedPlan, step_id: str, round_number: int = 1) -> Any:
    task_id, index = c.locations[step_id]
    tickets = ti.xcom[(f"attempt_{round_number}.commit", None, "return_value")]
    op = RunPlanStepOperator(task_id=task_id, automation_id=DAG_ID, round_number=round_number, ticket=tickets[index])
    return op.execute(context(ti.at(task_id, index)))


def test_tickets_put_producers_first_and_name_what_each_step_waits_for() -> None:
    diamond = Plan.model_validate(
        plan_doc(
            step("d", "count", {"name": "x"}, ["b", "c"]),
            step("b", "count", {"name": "x"}, ["a"]),
            step("c", "count", {"name": "x"}, ["a"]),
            step("a", "count", {"name": "x"}),
        )
    )
    tickets = step_tickets(diamond, lambda tool: "attempt_1.steps")
    order = [t.step["id"] for t in tickets]
    assert order.index("a") < order.index("b") < order.index("d") and order.index("c") < order.index("d")
    by_id = {t.step["id"]: t for t in tickets}
    assert by_id["a"].after == []
    assert by_id["d"].after == sorted([("attempt_1.steps", by_id["b"].index), ("attempt_1.steps", by_id["c"].index)])
    assert [t.index for t in tickets] == list(range(4)) and {t.task for t in tickets} == {"attempt_1.steps"}


def test_approval_off_records_an_automatic_decision() -> None:
    ti = FakeTI()
    proposed(ti, CHAIN)
    approve = task("attempt_1.approve")
    assert isinstance(approve, PlanApprovalOperator)
    approve.execute(context(ti.at("attempt_1.approve"), require_approval=False))
    decision = Decision.model_validate(ti.xcom[("attempt_1.approve", None, DECISION_KEY)])
    assert decision.auto and decision.chosen_options == ["Approve"]


def test_commit_fixes_the_plan_and_hands_out_one_ticket_per_step() -> None:
    ti = FakeTI()
    c = committed(ti, CHAIN)
    assert {task for task, _ in c.locations.values()} == {"attempt_1.steps"} and c.auto_approved and not c.edited
    assert set(c.locations) == {"first", "second", "tally"}
    assert c.locations["first"][1] < c.locations["second"][1]


def test_an_edited_plan_is_validated_again_and_an_invalid_edit_runs_nothing() -> None:
    ti = FakeTI()
    proposed(ti, CHAIN)
    bad = json.dumps(plan_doc(step("oops", "no_such_tool", {})))
    ti.xcom[("attempt_1.approve", None, DECISION_KEY)] = Decision(
        chosen_options=["Approve"], params_input={"plan_json": bad}, responded_by_user={"name": "ana"}
    ).dump()
    with pytest.raises(AirflowFailException, match=r"unknown_tool|no_such_tool"):
        task("attempt_1.commit").execute(context(ti.at("attempt_1.commit")))
    good = json.dumps(plan_doc(step("only", "count", {"name": "beta"}), plan_id="edited"))
    ti.xcom[("attempt_1.approve", None, DECISION_KEY)] = Decision(
        chosen_options=["Approve"], params_input={"plan_json": good}, responded_by_user={"name": "ana"}
    ).dump()
    tickets = task("attempt_1.commit").execute(context(ti.at("attempt_1.commit")))
    c = CommittedPlan.model_validate(ti.xcom[("attempt_1.commit", None, COMMITTED_KEY)])
    assert c.edited and [t["step"]["id"] for t in tickets] == ["only"]
    assert c.plan["provenance"]["created_by"] == "human:ana"
    assert c.plan["provenance"]["parent_plan_id"] == "kit_plan"


def test_a_step_runs_its_tool_once_and_records_what_happened() -> None:
    CALLS.clear()
    ti = FakeTI()
    c = committed(ti, CHAIN)
    output = run_step_instance(ti, c, "first")
    assert output["name"] == "alpha" and CALLS == [("write", {"name": "alpha"})]
    record = StepRecord.model_validate(ti.xcom[(*c.locations["first"], STEP_RECORD_KEY)])
    assert record.status == "success" and record.attempts == 1 and record.output["name"] == "alpha"


def test_a_step_waits_in_the_triggerer_while_its_producer_runs() -> None:
    ti = FakeTI()
    c = committed(ti, CHAIN)
    ti.states[c.locations["first"]] = "running"
    with pytest.raises(TaskDeferred) as deferred:
        run_step_instance(ti, c, "second")
    trigger = deferred.value.trigger
    assert isinstance(trigger, InstancesFinishedTrigger)
    assert trigger.instances == [list(c.locations["first"])]
    assert deferred.value.method_name == "producers_finished"


def test_a_step_reads_its_producer_output_by_map_index() -> None:
    CALLS.clear()
    ti = FakeTI()
    c = committed(ti, CHAIN)
    first = run_step_instance(ti, c, "first")
    ti.xcom[(*c.locations["first"], "return_value")] = first
    ti.states[c.locations["first"]] = "success"
    second = run_step_instance(ti, c, "second")
    assert second["name"] == "alpha" and CALLS[-1] == ("write", {"name": "alpha"})


def test_a_step_whose_producer_failed_is_skipped_and_recorded_not_run() -> None:
    CALLS.clear()
    ti = FakeTI()
    c = committed(ti, CHAIN)
    ti.states[c.locations["first"]] = "failed"
    with pytest.raises(AirflowSkipException, match="first did not succeed"):
        run_step_instance(ti, c, "second")
    record = StepRecord.model_validate(ti.xcom[(*c.locations["second"], STEP_RECORD_KEY)])
    assert record.status == "not_run" and CALLS == []


def finished_round(ti: FakeTI, doc: dict[str, Any], round_number: int, verdict: str) -> CommittedPlan:
    c = committed(ti, doc, round_number)
    for step_id, (task_id, index) in c.locations.items():
        ti.states[(task_id, index)] = "success"
        ti.xcom[(task_id, index, "return_value")] = {"key": f"ik_{round_number}_{step_id}", "name": step_id}
    ti.xcom[(f"attempt_{round_number}.review", None, "return_value")] = RoundReview(
        verdict=verdict, reason="r", plan_id=c.plan["id"], plan_hash=c.plan_hash
    ).dump()
    return c


def test_the_saga_lists_finished_mutating_steps_newest_round_first_dependents_first() -> None:
    ti = FakeTI()
    finished_round(ti, CHAIN, 1, "replan")
    finished_round(ti, plan_doc(step("again", "write", {"name": "gamma"}), plan_id="kit_plan_v2"), 2, "escalate")
    listed = [UndoTicket.model_validate(t) for t in task("saga.to_undo").execute(context(ti.at("saga.to_undo")))]
    assert [(t.round, t.step["id"]) for t in listed] == [(2, "again"), (1, "second"), (1, "first")]
    assert [t.task for t in listed] == ["saga.undo"] * 3 and [t.index for t in listed] == [0, 1, 2]
    assert listed[0].after == []
    assert listed[1].after == [("saga.undo", 0)]  # after every undo of round 2
    # and after the undo of the step that used its output
    assert listed[2].after == [("saga.undo", 0), ("saga.undo", 1)]


def test_the_saga_undoes_nothing_when_the_run_is_done() -> None:
    ti = FakeTI()
    finished_round(ti, CHAIN, 1, "done")
    assert task("saga.to_undo").execute(context(ti.at("saga.to_undo"))) == []


def test_an_undo_calls_the_compensating_tool_with_the_step_output_and_records_it() -> None:
    CALLS.clear()
    ti = FakeTI()
    finished_round(ti, CHAIN, 1, "escalate")
    listed = task("saga.to_undo").execute(context(ti.at("saga.to_undo")))
    first = next(t for t in listed if t["step"]["id"] == "first")
    ti.states.update({("saga.undo", t["index"]): "success" for t in listed if t["index"] < first["index"]})
    op = UndoStepOperator(task_id="saga.undo", automation_id=DAG_ID, ticket=first)
    op.execute(context(ti.at("saga.undo", first["index"])))
    assert CALLS == [("unwrite", {"key": "ik_1_first"})]
    record = UndoRecord.model_validate(ti.xcom[("saga.undo", first["index"], UNDO_RECORD_KEY)])
    assert record.step_id == "first" and record.round == 1 and record.undo_tool == "unwrite"


def test_an_undo_waits_for_the_undos_that_go_first() -> None:
    ti = FakeTI()
    finished_round(ti, CHAIN, 1, "escalate")
    listed = task("saga.to_undo").execute(context(ti.at("saga.to_undo")))
    first = next(t for t in listed if t["step"]["id"] == "first")
    op = UndoStepOperator(task_id="saga.undo", automation_id=DAG_ID, ticket=first)
    with pytest.raises(TaskDeferred):
        op.execute(context(ti.at("saga.undo", first["index"])))


def test_the_report_sums_the_rounds_and_fails_the_run_when_the_automation_failed() -> None:
    ti = FakeTI()
    finished_round(ti, CHAIN, 1, "done")
    report = task("report").execute(context(ti.at("report"), goal="Write things."))
    assert report["status"] == "succeeded" and report["verdict"] == "done"
    assert report["automation_id"] == DAG_ID and report["goal"] == CHAIN["goal"]
    assert report["version_chain"][0].startswith("kit_plan@")
    ti2 = FakeTI()
    finished_round(ti2, CHAIN, 1, "replan")
    finished_round(ti2, CHAIN, 2, "replan")
    with pytest.raises(AirflowFailException, match="re-plan limit"):
        task("report").execute(context(ti2.at("report"), goal="Write things."))
    assert ti2.xcom[("report", None, REPORT_KEY)]["status"] == "failed"


def test_review_on_failure_calls_no_model_when_every_step_succeeded() -> None:
    ti = FakeTI()
    c = committed(ti, CHAIN)
    for step_id, (task_id, index) in c.locations.items():
        ti.xcom[(task_id, index, STEP_RECORD_KEY)] = StepRecord(step_id=step_id, tool="t", status="success").dump()
    with pytest.raises(DownstreamTasksSkipped) as skipped:  # done: round 2 never runs
        task("attempt_1.review").execute(context(ti.at("attempt_1.review")))
    assert skipped.value.tasks == ["attempt_2.plan", "attempt_2.review"]
    review = RoundReview.model_validate(ti.xcom[("attempt_1.review", None, "return_value")])
    assert review.verdict == "done" and review.reviewed is False and len(review.steps) == 3


def test_the_group_sits_between_the_users_tasks() -> None:
    from airflow.providers.standard.operators.empty import EmptyOperator

    with DAG("kit_composed", schedule=None, params={"goal": Param("g", type="string")}) as dag:
        extract = EmptyOperator(task_id="extract")
        auto = claude_automation_group("orders", catalog=CATALOG, goal=extract.output, settings=SETTINGS)
        load = EmptyOperator(task_id="load")
        extract >> auto >> load
    assert "extract" in dag.get_task("orders.attempt_1.plan").upstream_task_ids
    assert dag.get_task("load").upstream_task_ids == {"orders.report"}
    assert auto.report.operator.task_id == "orders.report"
    assert auto.automation_id == "kit_composed.orders"


def test_a_group_without_a_goal_needs_the_dags_goal_param() -> None:
    with DAG("kit_no_goal", schedule=None), pytest.raises(ValueError, match="declare the DAG param 'goal'"):
        claude_automation_group("auto", catalog=CATALOG, settings=SETTINGS)


def test_every_operator_is_listed_by_the_provider_and_exported_from_operators() -> None:
    import importlib
    import pkgutil

    from airflow.sdk import BaseOperator

    import airflow_claude
    import airflow_claude.operators as operators
    from airflow_claude.get_provider_info import get_provider_info

    info = get_provider_info()
    listed = {m for entry in info["operators"] for m in entry["python-modules"]}
    defined: dict[str, str] = {}
    for module in pkgutil.walk_packages(airflow_claude.__path__, "airflow_claude."):
        if ".testing" in module.name:
            continue
        loaded = importlib.import_module(module.name)
        for name, value in vars(loaded).items():
            concrete = isinstance(value, type) and issubclass(value, BaseOperator) and "execute" in vars(value)
            if concrete and value.__module__ == module.name and not name.startswith("_"):
                defined[name] = module.name
    assert defined, "no operators found"
    assert set(defined.values()) <= listed, set(defined.values()) - listed
    assert set(defined) == set(operators.__all__)
    for entry in info["triggers"]:
        for module_name in entry["python-modules"]:
            importlib.import_module(module_name)


KEY = "sk-ant-kit-7f3a91"


@pytest.fixture
def claude(fake_claude: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The offline Claude behind the automation's ``anthropic_default`` connection."""
    conn = {"conn_type": "anthropic", "host": fake_claude.url, "password": KEY, "extra": {"model": "claude-kit"}}
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))
    return fake_claude


def test_the_plan_task_plans_through_the_gateway_and_keeps_secrets_out_of_xcom(claude: Any) -> None:
    claude.reply_tool_use("submit_plan", {"steps": CHAIN["steps"]})
    ti = FakeTI()
    goal = f"Write two things and count one. Key: {KEY}"
    proposal = Proposal.model_validate(task("attempt_1.plan").execute(context(ti.at("attempt_1.plan"), goal=goal)))
    assert [s["id"] for s in proposal.plan["steps"]] == ["first", "second", "tally"]
    assert proposal.model == "claude-kit" and KEY not in json.dumps(proposal.dump())
    assert ti.xcom[("attempt_1.plan", None, GOAL_KEY)] == "Write two things and count one. Key: ***"
    usage = ti.xcom[("attempt_1.plan", None, "usage")]
    assert usage["calls"] == 1 and usage["per_call"][0]["purpose"] == "plan"
    assert KEY not in claude.message_requests()[0].text


def test_the_review_asks_claude_when_a_step_failed_and_keeps_the_next_round(claude: Any) -> None:
    claude.reply_tool_use("submit_review", {"verdict": "replan", "reason": "second failed"})
    ti = FakeTI()
    c = committed(ti, CHAIN)
    for step_id, (task_id, index) in c.locations.items():
        status = "failed" if step_id == "second" else "success"
        ti.xcom[(task_id, index, STEP_RECORD_KEY)] = StepRecord(step_id=step_id, tool="t", status=status).dump()
    review = RoundReview.model_validate(task("attempt_1.review").execute(context(ti.at("attempt_1.review"))))
    assert review.verdict == "replan" and review.reviewed
    sent = json.loads(claude.message_requests()[0].body["messages"][0]["content"][0]["text"])
    assert [r["status"] for r in sent["results"]] == ["success", "failed", "success"]
    assert ti.xcom[("attempt_1.review", None, "usage")]["calls"] == 1


def test_the_wait_fires_when_every_producer_finished_and_not_before_its_minimum_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio
    import time

    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    polls: list[float] = []

    def states(dag_id: str, task_ids: list[str], run_ids: list[str]) -> dict[str, Any]:
        polls.append(time.monotonic())
        second = "success" if len(polls) > 2 else "running"
        return {run_ids[0]: {"attempt_1.steps_0": "success", "attempt_1.steps_1": second}}

    monkeypatch.setattr(RuntimeTaskInstance, "get_task_states", staticmethod(states))
    trigger = InstancesFinishedTrigger(
        DAG_ID, "r1", [("attempt_1.steps", 1), ("attempt_1.steps", 0)], poll_seconds=0.05, min_wait_seconds=0.4
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_claude.automation.waiting.InstancesFinishedTrigger"
    assert InstancesFinishedTrigger(**kwargs).serialize() == (classpath, kwargs)

    async def first_event() -> Any:
        started = time.monotonic()
        async for event in trigger.run():
            return event, time.monotonic() - started

    event, waited = asyncio.run(first_event())
    assert event.payload == {"states": [["attempt_1.steps", 0, "success"], ["attempt_1.steps", 1, "success"]]}
    assert waited >= 0.4 and len(polls) > 3  # producers were done after 3 polls; the minimum wait held it back
