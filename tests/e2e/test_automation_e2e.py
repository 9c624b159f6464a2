"""Automations through a real Airflow (scheduler, dag-processor, api-server) and the offline Claude.

All scenarios run as concurrent DAG runs of one Airflow instance; the offline Claude decides
what to answer from markers in the goal, like a scripted model would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from airflow_claude.automation.memory import memory_key
from airflow_claude.examples.orders import orders_connection_env
from airflow_claude.testing import FakeClaude
from airflow_claude.testing.fake_claude import forced_tool_name
from tests.harness.airflow_instance import AirflowInstance

pytestmark = pytest.mark.e2e
DAGS = Path(__file__).parent / "dags_automation"
MODEL = "claude-sonnet-5-5"
TEMPLATE = "{{ 7 * 7 }}"


def good_steps() -> list[dict[str, Any]]:
    return [
        {"id": "load", "tool": "load_source", "args": {"source": "good"}},
        {
            "id": "summarize",
            "tool": "summarize_load",
            "depends_on": ["load"],
            "args": {"rows": {"$ref": "steps.load.output.rows"}, "note": TEMPLATE},
        },
    ]


def broken_steps() -> list[dict[str, Any]]:
    return [
        {"id": "load_broken", "tool": "load_source", "args": {"source": "broken"}},
        {
            "id": "summarize",
            "tool": "summarize_load",
            "depends_on": ["load_broken"],
            "args": {"rows": {"$ref": "steps.load_broken.output.rows"}},
        },
    ]


def goal_of(body: dict[str, Any]) -> str:
    text = json.dumps(body["messages"][0])
    found = re.search(r"<goal>\\n(.*?)\\n</goal>", text)
    return found.group(1) if found else ""


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """The offline Claude's behaviour for these tests."""
    if forced_tool_name(body) == "submit_plan":
        goal = goal_of(body)
        replanning = "did not meet the goal" in json.dumps(body["messages"][0])
        if "[saga]" in goal:
            steps = [
                {"id": "tell", "tool": "notify", "args": {"channel": "#data", "message": "starting the load"}},
                {"id": "load_broken", "tool": "load_source", "depends_on": ["tell"], "args": {"source": "broken"}},
            ]
        elif "[too-big]" in goal:
            steps = [{"id": f"s{i}", "tool": "load_source", "args": {"source": "good"}} for i in range(5)]
        elif "[replan-limit]" in goal or ("[replan]" in goal and not replanning):
            steps = broken_steps()
        else:
            steps = good_steps()
        reply: dict[str, Any] = {"tool_use": {"name": "submit_plan", "input": {"steps": steps}}}
        if "[budget]" in goal:
            reply["usage"] = {"output_tokens": 8000}
        return reply
    payload = json.loads(body["messages"][0]["content"][0]["text"])
    failed = [s for s in payload["results"] if s["status"] != "success"]
    if failed:
        verdict = {"verdict": "replan", "reason": f"step {failed[0]['id']} failed: {failed[0].get('error', '')[:80]}"}
    else:
        verdict = {"verdict": "done", "reason": "all steps succeeded", "summary": "ok"}
    return {"tool_use": {"name": "submit_review", "input": verdict}}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeClaude]:
    server = FakeClaude()
    server.responder = answer
    with server:
        yield server


@pytest.fixture(scope="module")
def airflow(fake: FakeClaude, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowInstance]:
    base = tmp_path_factory.mktemp("automation")
    conn = {"conn_type": "anthropic", "host": fake.url, "password": "e2e-key", "extra": {"model": MODEL}}
    env = {
        "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(conn),
        "AIRFLOW_CLAUDE_DEMO_DIR": str(base / "demo"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        **orders_connection_env(base / "demo" / "orders.db"),
    }
    instance = AirflowInstance(home=base / "home", dags_folder=DAGS, extra_env=env, with_triggerer=True)
    instance.start()
    try:
        instance.wait_for_dag("auto_main", timeout=120)
        instance.unpause("auto_main")
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def runs(airflow: AirflowInstance) -> dict[str, str]:
    """Trigger every scenario at once; answer the approvals as a person would through the REST API."""
    confs = {
        "approve": {"goal": "Load the good source and summarize it."},
        "reject": {"goal": "Load the good source, to be rejected."},
        "bad_edit": {"goal": "Load the good source, to be edited badly."},
        "replan": {"goal": "[replan] Load a source and summarize it."},
        "replan_limit": {"goal": "[replan-limit] Load a source.", "require_approval": False},
        "budget": {"goal": "[budget] Load the good source.", "require_approval": False, "budget_usd": 0.15},
        "too_big": {"goal": "[too-big] Load everything.", "require_approval": False, "max_steps": 2},
        "saga": {"goal": "[saga] Tell the team, then load.", "require_approval": False},
    }
    ids = {name: airflow.trigger("auto_main", conf=conf) for name, conf in confs.items()}
    airflow.answer_hitl("auto_main", ids["approve"], "attempt_1.approve", ["Approve"], timeout=240)
    airflow.answer_hitl("auto_main", ids["reject"], "attempt_1.approve", ["Reject"], timeout=240)
    proposal = airflow.xcom("auto_main", ids["bad_edit"], "attempt_1.plan")
    edited = json.loads(json.dumps(proposal["plan"]))
    edited["steps"][0]["tool"] = "load_sourc"
    airflow.answer_hitl(
        "auto_main",
        ids["bad_edit"],
        "attempt_1.approve",
        ["Approve"],
        params_input={"plan_json": json.dumps(edited)},
        timeout=240,
    )
    airflow.answer_hitl("auto_main", ids["replan"], "attempt_1.approve", ["Approve"], timeout=240)
    airflow.answer_hitl("auto_main", ids["replan"], "attempt_2.approve", ["Approve"], timeout=300)
    return ids


def finish(airflow: AirflowInstance, run_id: str, dag_id: str = "auto_main") -> tuple[str, dict[str, Any]]:
    """The run's final state and its report (pushed as XCom ``report`` whatever the outcome), plus the log."""
    state = airflow.wait_for_run(dag_id, run_id, timeout=420)
    report = airflow.xcom(dag_id, run_id, "report", key="report")
    report["log"] = airflow.task_log(dag_id, run_id, "report", 1)
    return state, report


def not_successful(instances: dict[tuple[str, int], dict[str, Any]]) -> dict[str, Any]:
    """Task instances that did not succeed, with their tries: what a failed assertion should show."""
    return {
        f"{task}[{index}]": (ti["state"], ti.get("try_number"))
        for (task, index), ti in instances.items()
        if ti["state"] not in ("success", "skipped")
    }


def tis(airflow: AirflowInstance, run_id: str, dag_id: str = "auto_main") -> dict[tuple[str, int], dict[str, Any]]:
    return {(ti["task_id"], ti["map_index"]): ti for ti in airflow.task_instances(dag_id, run_id)}


def test_approved_plan_runs_each_step_as_its_own_task_instance(
    airflow: AirflowInstance, runs: dict[str, str], fake: FakeClaude
) -> None:
    run_id = runs["approve"]
    state, report = finish(airflow, run_id)
    instances = tis(airflow, run_id)
    assert state == "success", (report["verdict"], report["reason"], not_successful(instances), report["log"][-3000:])
    load = instances[("attempt_1.steps", 0)]
    summarize = instances[("attempt_1.steps", 1)]
    assert (load["rendered_map_index"], load["state"]) == ("load", "success")
    assert (summarize["rendered_map_index"], summarize["state"]) == ("summarize", "success")
    output = airflow.xcom("auto_main", run_id, "attempt_1.steps", map_index=1)
    assert output == {"summary": f"42 rows {TEMPLATE}"}  # the reference resolved; the template arrived verbatim
    assert report["status"] == "succeeded" and report["verdict"] == "done"
    steps = report["rounds"][0]["steps"]
    assert [(s["id"], s["status"], s["attempts"]) for s in steps] == [
        ("load", "success", 1),
        ("summarize", "success", 1),
    ]
    assert [c["purpose"] for c in report["model_calls"]] == ["plan", "review"]
    assert Decimal(report["cost_usd"]) == sum(Decimal(c["cost_usd"]) for c in report["model_calls"]) > 0
    assert report["tokens"]["output_tokens"] == sum(c["output_tokens"] for c in report["model_calls"])
    assert report["rounds"][0]["approved_by"] is not None and report["rounds"][0]["auto_approved"] is False
    assert len(report["version_chain"]) == 1 and instances[("attempt_2.plan", -1)]["state"] == "skipped"
    detail = airflow.hitl_detail("auto_main", run_id, "attempt_1.approve")
    assert "load_source" in detail["body"] and "summarize_load" in detail["body"]


def test_reject_stops_the_run_cleanly(airflow: AirflowInstance, runs: dict[str, str]) -> None:
    run_id = runs["reject"]
    state, report = finish(airflow, run_id)
    assert state == "success" and report["status"] == "rejected" and report["verdict"] == "rejected"
    instances = tis(airflow, run_id)
    assert instances[("attempt_1.commit", -1)]["state"] == "skipped"
    assert all(ti["state"] in ("skipped", None) for (task, _), ti in instances.items() if task.endswith(".steps"))
    assert [c["purpose"] for c in report["model_calls"]] == ["plan"]  # no review call for a rejected plan


def test_invalid_edit_is_refused_before_anything_runs(airflow: AirflowInstance, runs: dict[str, str]) -> None:
    run_id = runs["bad_edit"]
    state, report = finish(airflow, run_id)
    assert state == "failed"
    assert report["verdict"] == "invalid_edit"
    instances = tis(airflow, run_id)
    assert instances[("attempt_1.commit", -1)]["state"] == "failed"
    assert not any(ti["state"] == "success" for (task, _), ti in instances.items() if task.endswith(".steps"))
    assert "did you mean 'load_source'?" in report["reason"]


def test_failed_step_leads_to_a_replan_that_succeeds(
    airflow: AirflowInstance, runs: dict[str, str], fake: FakeClaude
) -> None:
    run_id = runs["replan"]
    state, report = finish(airflow, run_id)
    assert state == "success" and report["status"] == "succeeded"
    first, second = report["rounds"]
    assert first["verdict"] == "replan" and "load_broken failed" in first["reason"]
    failed = next(s for s in first["steps"] if s["id"] == "load_broken")
    assert failed["status"] == "failed" and failed["attempts"] == 2  # the tool's default retry, then final
    assert second["verdict"] == "done" and second["parent_plan_id"] == first["plan_id"]
    assert second["plan_id"].endswith("_v2") and len(report["version_chain"]) == 2
    assert [c["purpose"] for c in report["model_calls"]] == ["plan", "review", "plan", "review"]
    replan_request = next(
        r for r in fake.message_requests() if "did not meet the goal" in r.text and "[replan] Load" in r.text
    )
    assert "load_broken" in replan_request.text


def test_replan_limit_reached_fails_the_run(airflow: AirflowInstance, runs: dict[str, str]) -> None:
    state, report = finish(airflow, runs["replan_limit"])
    assert state == "failed" and report["verdict"] == "replan"
    assert "re-plan limit reached (1)" in report["reason"]
    assert [(r["round"], r["verdict"]) for r in report["rounds"]] == [(1, "replan"), (2, "replan")]


def test_budget_exhausted_before_the_review(airflow: AirflowInstance, runs: dict[str, str]) -> None:
    run_id = runs["budget"]
    state, report = finish(airflow, run_id)
    assert state == "failed" and report["verdict"] == "budget_exhausted"
    review = airflow.task_instance("auto_main", run_id, "attempt_1.review")
    assert review["state"] == "failed"
    assert "the review call was not made" in report["reason"] and "of its $0.15 budget" in report["reason"]
    assert Decimal(report["cost_usd"]) > Decimal("0.10")  # the plan's spend is reported
    usage = airflow.xcom("auto_main", run_id, "attempt_1.review", key="usage")
    assert usage["calls"] == 0 and "BudgetExhausted" in usage["error"]


def test_plan_beyond_the_automation_limits_is_refused(
    airflow: AirflowInstance, runs: dict[str, str], fake: FakeClaude
) -> None:
    run_id = runs["too_big"]
    state, report = finish(airflow, run_id)
    assert state == "failed" and report["verdict"] == "planning_failed"
    assert airflow.task_instance("auto_main", run_id, "attempt_1.plan")["state"] == "failed"
    repairs = [r for r in fake.message_requests() if "[too-big]" in r.text and "too_many_steps" in r.text]
    assert repairs and "over the limit of 2" in repairs[0].text
    assert not any(
        ti["state"] == "success" for (task, _), ti in tis(airflow, run_id).items() if task.endswith(".steps")
    )


def test_memory_of_one_run_reaches_the_planning_request_of_the_next(
    airflow: AirflowInstance, runs: dict[str, str], fake: FakeClaude
) -> None:
    for run_id in runs.values():  # every run of the module remembers itself; the memory keeps the newest 5
        assert airflow.wait_for_run("auto_main", run_id, timeout=420) in ("success", "failed")
    memory = json.loads(airflow.get(f"/variables/{memory_key('auto_main')}")["value"])
    remembered = [entry["run_id"] for entry in memory]
    assert 0 < len(remembered) <= 5 and set(remembered) <= set(runs.values()), remembered
    first = remembered[-1]
    second = airflow.trigger(
        "auto_main", conf={"goal": "[memory] Load the good source again.", "require_approval": False}
    )
    state, report = finish(airflow, second)
    assert state == "success", (report["verdict"], report["reason"], report["log"][-3000:])
    request = next(r for r in fake.message_requests() if "[memory] Load" in r.text and "submit_plan" in r.text)
    assert "<memory>" in request.text and first in request.text


def test_scheduled_run_with_approval_off(airflow: AirflowInstance, runs: dict[str, str]) -> None:
    airflow.wait_for_dag("auto_nightly", timeout=120)
    airflow.unpause("auto_nightly")
    run_id = wait_for_scheduled_run(airflow, "auto_nightly")
    state, report = finish(airflow, run_id, dag_id="auto_nightly")
    assert state == "success" and report["status"] == "succeeded", (report["verdict"], report["reason"])
    approve = airflow.xcom("auto_nightly", run_id, "attempt_1.approve", key="decision")
    assert approve["auto"] is True and approve["chosen_options"] == ["Approve"]
    assert report["rounds"][0]["auto_approved"] is True
    # the next run with the same goal after a good run reuses the cached plan: no planning call
    again = airflow.trigger("auto_nightly")
    state, second = finish(airflow, again, dag_id="auto_nightly")
    assert state == "success" and [c["purpose"] for c in second["model_calls"]] == ["review"]
    assert airflow.xcom("auto_nightly", again, "attempt_1.plan")["cached"] is True
    assert second["rounds"][0]["plan_hash"] == report["rounds"][0]["plan_hash"]


def wait_for_scheduled_run(airflow: AirflowInstance, dag_id: str, timeout: float = 120) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in airflow.get(f"/dags/{dag_id}/dagRuns")["dag_runs"] if r["run_type"] == "scheduled"]
        if found:
            return str(found[0]["dag_run_id"])
        time.sleep(2)
    raise AssertionError(f"no scheduled run of {dag_id} within {timeout}s")


def test_failed_run_undoes_finished_mutating_steps_newest_first(airflow: AirflowInstance, runs: dict[str, str]) -> None:
    run_id = runs["saga"]
    state, report = finish(airflow, run_id)
    assert state == "failed" and report["verdict"] == "replan"  # re-plan limit reached: the run fails
    assert report["compensation"] == {"undone": ["round 2: tell", "round 1: tell"], "not_undone": []}
    undo = {(ti["task_id"], ti["map_index"]): ti for ti in airflow.task_instances("auto_main", run_id)}
    round2 = undo[("saga.undo", 0)]
    round1 = undo[("saga.undo", 1)]
    assert round2["rendered_map_index"] == "undo tell" and round2["state"] == round1["state"] == "success"
    # the newer effect is undone first: round 1's undo calls its tool only after round 2's has finished
    newer = airflow.task_log("auto_main", run_id, "saga.undo", round2["try_number"], 0)
    older = airflow.task_log("auto_main", run_id, "saga.undo", round1["try_number"], 1)
    assert record_time(newer, "step.finished") <= record_time(older, "step.started")
    outbox_path = Path(airflow.extra_env["AIRFLOW_CLAUDE_DEMO_DIR"]) / "outbox.jsonl"
    entries = [json.loads(line) for line in outbox_path.read_text().splitlines()]
    sent = {e["id"] for e in entries if e.get("run_id") == run_id and "retracts" not in e}
    retracted = {e["retracts"] for e in entries if e.get("run_id") == run_id and "retracts" in e}
    # the re-plan repeated the identical step: same idempotency key, so one message and one retraction
    assert len(sent) == 1 and retracted == sent
    assert len([e for e in entries if e.get("run_id") == run_id and "retracts" in e]) == 1


def record_time(log: str, event: str) -> str:
    """The timestamp (ISO, UTC) of the first ``event`` record in a task log."""
    return next(line for line in log.splitlines() if f"airflow_claude {event} " in line).split()[0]


def test_successful_runs_undo_nothing(airflow: AirflowInstance, runs: dict[str, str]) -> None:
    run_id = runs["approve"]
    assert airflow.wait_for_run("auto_main", run_id, timeout=420) == "success"
    saga = [ti for ti in airflow.task_instances("auto_main", run_id) if ti["task_id"].startswith("saga.")]
    assert saga and all(ti["state"] in ("success", "skipped") for ti in saga)
    assert not [ti for ti in saga if ti["task_id"] == "saga.undo" and ti["state"] == "success"]


def test_an_automation_inside_the_users_own_dag(airflow: AirflowInstance, runs: dict[str, str]) -> None:
    """Upstream task -> the automation's task group -> a downstream task that reads the run report."""
    airflow.wait_for_dag("auto_composed", timeout=120)
    airflow.unpause("auto_composed")
    run_id = airflow.trigger("auto_composed", conf={})
    state = airflow.wait_for_run("auto_composed", run_id, timeout=420)
    instances = tis(airflow, run_id, dag_id="auto_composed")
    assert state == "success", not_successful(instances)
    assert instances[("write_goal", -1)]["end_date"] <= instances[("orders_auto.attempt_1.plan", -1)]["start_date"]
    loaded = airflow.xcom("auto_composed", run_id, "load_report")
    assert loaded == {
        "status": "succeeded",
        "automation": "auto_composed.orders_auto",
        "goal": "[composed] Load the good source and summarize it.",
    }
    steps = sorted(
        ti["rendered_map_index"] for (task, _), ti in instances.items() if task == "orders_auto.attempt_1.steps"
    )
    assert steps == ["load", "summarize"]
    # the grid holds the user's tasks and the automation's, no per-level scaffolding
    assert {task for task, _ in instances} == {
        "write_goal",
        "load_report",
        "orders_auto.report",
        "orders_auto.saga.to_undo",
        "orders_auto.saga.undo",
        *(f"orders_auto.attempt_1.{name}" for name in ("plan", "approve", "commit", "steps", "review")),
    }
