"""Replay inside the automation: a run whose conf carries a stored plan runs it again, no model call.

The tasks run their ``execute`` on the kit's fake task instance (``automation_kit``); the run's
conf is a fake ``dag_run``. Claude is the offline fake behind the automation's connection, so a
request that reached it would show in its log.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, DownstreamTasksSkipped
from automation_kit import CATALOG, FakeTI, context

from airflow_claude.automation import AutomationSettings, claude_automation
from airflow_claude.automation.automation import automation_named
from airflow_claude.automation.contracts import (
    COMMITTED_KEY,
    DECISION_KEY,
    GOAL_KEY,
    OUTCOME_KEY,
    REPORT_KEY,
    STEP_RECORD_KEY,
    USAGE_KEY,
    CommittedPlan,
    Decision,
    Outcome,
    Proposal,
    Report,
    RoundReview,
    StepRecord,
)
from airflow_claude.automation.replay import check_replay, replay_request
from airflow_claude.catalog import Catalog, python_tool
from airflow_claude.plan.model import Plan
from airflow_claude.planner.gateway import ModelGateway
from airflow_claude.runtime.replay import REPLAY_CONF_KEY, ReplayRequest

SETTINGS = AutomationSettings(max_steps=6, max_replans=1, require_approval=False, review="always")
DAG_ID = "kit_replay"
OTHER_ID = "kit_replay_changed"
DAG_UNDER_TEST = claude_automation(DAG_ID, catalog=CATALOG, settings=SETTINGS)


@python_tool(name="write", side_effects="mutating", circuit=None)
def write_v2(title: str) -> dict[str, str]:
    """Write a thing: the argument is now called title."""
    return {"title": title}


# The catalog changed since the source run: ``write`` takes ``title`` now, ``count`` is gone.
CHANGED = claude_automation(OTHER_ID, catalog=Catalog([write_v2], name="kit_changed"), settings=SETTINGS)

SOURCE = Plan.model_validate(
    {
        "schema_version": "1",
        "id": "kit_replay_3f2a91c0_v1",
        "goal": "Write two things and count one.",
        "steps": [
            {"id": "first", "tool": "write", "args": {"name": "alpha"}, "depends_on": []},
            {
                "id": "second",
                "tool": "write",
                "args": {"name": {"$ref": "steps.first.output.name"}},
                "depends_on": ["first"],
            },
            {"id": "tally", "tool": "count", "args": {"name": "alphabet"}, "depends_on": []},
        ],
        "provenance": {"created_by": "claude:claude-kit"},
    }
)
STORED = SOURCE.model_dump(mode="json")  # what the source run's commit task stored
FROM = {"dag_id": DAG_ID, "run_id": "manual__2026-11-30T00:00:00+00:00"}


def replay_context(ti: FakeTI, conf: dict[str, Any] | None, **params: Any) -> dict[str, Any]:
    ctx = context(ti, **params)
    ctx["dag_run"] = SimpleNamespace(conf=conf)
    return ctx


def request(**overrides: Any) -> ReplayRequest:
    fields: dict[str, Any] = {"plan": STORED, "plan_hash": SOURCE.hash, "source": FROM, "requested_by": "ana"}
    return ReplayRequest(**{**fields, **overrides})


@pytest.fixture
def no_gateway(fake_claude: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The fake Claude behind the connection, and a gateway that fails the test if anything builds one."""
    conn = {"conn_type": "anthropic", "host": fake_claude.url, "password": "sk-ant-kit", "extra": {"model": "m"}}
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a replay run built a model gateway")

    monkeypatch.setattr(ModelGateway, "from_connection", classmethod(refuse))
    return fake_claude


def plan_task(dag: Any, ti: FakeTI, conf: dict[str, Any] | None, round_number: int = 1, **params: Any) -> Any:
    task_id = f"attempt_{round_number}.plan"
    return dag.get_task(task_id).execute(replay_context(ti.at(task_id), conf, **params))


def test_the_request_round_trips_through_the_run_conf() -> None:
    conf = request().conf()
    assert set(conf) == {REPLAY_CONF_KEY} and conf[REPLAY_CONF_KEY]["plan_hash"] == SOURCE.hash
    assert request().run_conf() == {**conf, "goal": SOURCE.goal}  # the trigger form's goal must validate
    got = replay_request(replay_context(FakeTI(dag_id=DAG_ID), json.loads(json.dumps(conf))), DAG_ID)
    assert got == request()
    assert got is not None and got.replay_of() == {"plan_hash": SOURCE.hash, "source": FROM, "requested_by": "ana"}
    assert replay_request(replay_context(FakeTI(), None), DAG_ID) is None
    assert replay_request(replay_context(FakeTI(), {"goal": "x"}), DAG_ID) is None


def test_a_replay_proposes_the_same_plan_and_hash_with_no_model_call(no_gateway: Any) -> None:
    ti = FakeTI(dag_id=DAG_ID)
    value = plan_task(DAG_UNDER_TEST, ti, request().conf())
    proposal = Proposal.model_validate(value)
    assert proposal.plan == STORED and proposal.plan_hash == SOURCE.hash
    assert proposal.plan["id"] == SOURCE.id  # kept, not this run's own plan id
    assert proposal.replay_of == {"plan_hash": SOURCE.hash, "source": FROM, "requested_by": "ana"}
    assert ti.xcom[("attempt_1.plan", None, GOAL_KEY)] == SOURCE.goal
    usage = ti.xcom[("attempt_1.plan", None, USAGE_KEY)]
    assert usage["calls"] == 0 and usage["cost_usd"] == "0" and usage["error"] is None
    assert no_gateway.requests == []


def test_the_replayed_plan_keeps_its_hash_through_commit_steps_review_and_report(no_gateway: Any) -> None:
    ti = FakeTI(dag_id=DAG_ID)
    conf = request().conf()
    ti.xcom[("attempt_1.plan", None, "return_value")] = plan_task(DAG_UNDER_TEST, ti, conf)
    ti.xcom[("attempt_1.approve", None, DECISION_KEY)] = Decision(chosen_options=["Approve"], auto=True).dump()
    tickets = DAG_UNDER_TEST.get_task("attempt_1.commit").execute(replay_context(ti.at("attempt_1.commit"), conf))
    committed = CommittedPlan.model_validate(ti.xcom[("attempt_1.commit", None, COMMITTED_KEY)])
    assert committed.plan_hash == SOURCE.hash and committed.plan["id"] == SOURCE.id and len(tickets) == 3
    for step_id, (task_id, index) in committed.locations.items():
        ti.xcom[(task_id, index, STEP_RECORD_KEY)] = StepRecord(step_id=step_id, tool="t", status="success").dump()
    with pytest.raises(DownstreamTasksSkipped):  # done: round 2 never runs
        DAG_UNDER_TEST.get_task("attempt_1.review").execute(replay_context(ti.at("attempt_1.review"), conf))
    review = RoundReview.model_validate(ti.xcom[("attempt_1.review", None, "return_value")])
    assert review.verdict == "done" and not review.reviewed and review.plan_hash == SOURCE.hash
    assert ti.xcom[("attempt_1.review", None, USAGE_KEY)]["calls"] == 0
    report = Report.model_validate(DAG_UNDER_TEST.get_task("report").execute(replay_context(ti.at("report"), conf)))
    assert report.status == "succeeded" and report.verdict == "done"
    assert report.replay_of == {"plan_hash": SOURCE.hash, "source": FROM, "requested_by": "ana"}
    assert report.cost_usd == "0" and report.model_calls == [] and report.goal == SOURCE.goal
    assert report.rounds[0]["plan_hash"] == SOURCE.hash
    assert no_gateway.requests == []


def test_a_replay_review_fails_the_round_when_a_step_failed_and_names_it(no_gateway: Any) -> None:
    ti = FakeTI(dag_id=DAG_ID)
    conf = request().conf()
    ti.xcom[("attempt_1.plan", None, "return_value")] = plan_task(DAG_UNDER_TEST, ti, conf)
    ti.xcom[("attempt_1.approve", None, DECISION_KEY)] = Decision(chosen_options=["Approve"], auto=True).dump()
    DAG_UNDER_TEST.get_task("attempt_1.commit").execute(replay_context(ti.at("attempt_1.commit"), conf))
    committed = CommittedPlan.model_validate(ti.xcom[("attempt_1.commit", None, COMMITTED_KEY)])
    status = {"first": "failed", "second": "not_run", "tally": "success"}
    for step_id, (task_id, index) in committed.locations.items():
        record = StepRecord(step_id=step_id, tool="t", status=status[step_id])  # type: ignore[arg-type]
        ti.xcom[(task_id, index, STEP_RECORD_KEY)] = record.dump()
    with pytest.raises(DownstreamTasksSkipped) as skipped:  # no re-plan in a replay
        DAG_UNDER_TEST.get_task("attempt_1.review").execute(replay_context(ti.at("attempt_1.review"), conf))
    assert skipped.value.tasks == ["attempt_2.plan", "attempt_2.review"]
    review = RoundReview.model_validate(ti.xcom[("attempt_1.review", None, "return_value")])
    assert review.verdict == "failed" and not review.reviewed
    assert "first (failed)" in (review.reason or "") and "second (not_run)" in (review.reason or "")
    assert "tally" not in (review.reason or "")
    with pytest.raises(AirflowFailException, match="verdict 'failed'"):
        DAG_UNDER_TEST.get_task("report").execute(replay_context(ti.at("report"), conf))
    assert ti.xcom[("report", None, REPORT_KEY)]["replay_of"]["plan_hash"] == SOURCE.hash
    assert no_gateway.requests == []


def test_a_plan_that_no_longer_fits_the_catalog_is_refused_with_every_problem(no_gateway: Any) -> None:
    ti = FakeTI(dag_id=OTHER_ID)
    with pytest.raises(AirflowFailException) as refused:
        plan_task(CHANGED, ti, request(automation_id=OTHER_ID).conf())
    reason = str(refused.value)
    outcome = Outcome.model_validate(ti.xcom[("attempt_1.plan", None, OUTCOME_KEY)])
    assert outcome.verdict == "replay_refused" and outcome.reason == reason
    assert ("attempt_1.plan", None, "return_value") not in ti.xcom  # nothing proposed
    assert "[unknown_tool]" in reason and "step=tally" in reason  # the tool is gone
    lines = [line for line in reason.splitlines() if "step=first" in line or "step=second" in line]
    assert len(lines) >= 2 and all(f"plan={SOURCE.id}" in line and "at $.steps[" in line for line in lines)
    assert ti.xcom[("attempt_1.plan", None, USAGE_KEY)]["calls"] == 0
    report = CHANGED.get_task("report")
    with pytest.raises(AirflowFailException, match="replay_refused"):
        report.execute(replay_context(ti.at("report"), request(automation_id=OTHER_ID).conf()))
    stored = Report.model_validate(ti.xcom[("report", None, REPORT_KEY)])
    assert stored.verdict == "replay_refused" and stored.status == "failed" and stored.cost_usd == "0"
    assert stored.replay_of is not None and stored.replay_of["plan_hash"] == SOURCE.hash
    assert no_gateway.requests == []


def test_each_changed_argument_is_named_with_its_validator_code() -> None:
    with pytest.raises(AirflowFailException) as refused:
        check_replay(request(), automation_named(OTHER_ID))
    reason = str(refused.value)
    problems = re.findall(r"^  - plan=(\S+) step=(\w+) at (\S+): \[(\w+)\]", reason, re.MULTILINE)
    assert {(step, code) for _, step, _, code in problems} == {
        ("first", "invalid_argument"),
        ("second", "invalid_argument"),
        ("tally", "unknown_tool"),
    }, reason
    assert all(plan_id == SOURCE.id for plan_id, *_ in problems) and "5 problems" in reason
    assert reason.startswith(f"replay of plan {SOURCE.id} {SOURCE.hash} refused:")


def test_a_tampered_plan_is_refused_by_its_hash(no_gateway: Any) -> None:
    tampered = json.loads(json.dumps(STORED))
    tampered["steps"][0]["args"]["name"] = "omega"  # still a valid plan, but not the stored one
    ti = FakeTI(dag_id=DAG_ID)
    with pytest.raises(AirflowFailException, match="plan_hash_mismatch") as refused:
        plan_task(DAG_UNDER_TEST, ti, request(plan=tampered).conf())
    assert SOURCE.hash in str(refused.value) and Plan.model_validate(tampered).hash in str(refused.value)
    assert ti.xcom[("attempt_1.plan", None, OUTCOME_KEY)]["verdict"] == "replay_refused"
    assert no_gateway.requests == []


def test_a_malformed_request_fails_the_plan_task_naming_the_key_and_field(no_gateway: Any) -> None:
    ti = FakeTI(dag_id=DAG_ID)
    conf = {REPLAY_CONF_KEY: {"plan": STORED, "plan_hash": 7, "extra": "x"}}
    with pytest.raises(AirflowFailException) as refused:
        plan_task(DAG_UNDER_TEST, ti, conf)
    reason = str(refused.value)
    assert (
        REPLAY_CONF_KEY in reason and f"{REPLAY_CONF_KEY}.plan_hash" in reason and f"{REPLAY_CONF_KEY}.extra" in reason
    )
    assert ti.xcom[("attempt_1.plan", None, OUTCOME_KEY)]["verdict"] == "replay_refused"
    assert no_gateway.requests == []


def test_a_request_for_another_automation_is_ignored(fake_claude: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "anthropic", "host": fake_claude.url, "password": "sk-ant-kit", "extra": {"model": "m"}}
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))
    steps = [{"id": "only", "tool": "count", "args": {"name": "beta"}, "depends_on": []}]
    fake_claude.reply_tool_use("submit_plan", {"steps": steps})
    ti = FakeTI(dag_id=DAG_ID)
    ctx = replay_context(ti.at("attempt_1.plan"), request(automation_id="some_dag.other").conf(), goal="Count beta.")
    proposal = Proposal.model_validate(DAG_UNDER_TEST.get_task("attempt_1.plan").execute(ctx))
    assert proposal.replay_of is None and [s["id"] for s in proposal.plan["steps"]] == ["only"]
    assert len(fake_claude.message_requests()) == 1  # planned by Claude as usual


def test_a_replay_is_only_read_in_round_one(no_gateway: Any) -> None:
    ti = FakeTI(dag_id=DAG_ID)
    with pytest.raises(AirflowSkipException, match="no re-plan"):  # round 2 plans only after a re-plan verdict
        plan_task(DAG_UNDER_TEST, ti, request().conf(), round_number=2, goal=SOURCE.goal)
    assert no_gateway.requests == []


def test_an_edited_committed_plan_survives_json_transport_with_its_hash(no_gateway: Any) -> None:
    """The source run's committed plan (an approver's edit: created_at, parent fields) as the API carries it."""
    ti = FakeTI(dag_id=DAG_ID)
    proposal = Proposal(plan=STORED, plan_hash=SOURCE.hash, goal=SOURCE.goal, model="m")
    ti.xcom[("attempt_1.plan", None, "return_value")] = proposal.dump()
    edited = json.loads(json.dumps(STORED))
    edited["steps"][2]["args"]["name"] = "alphabetical"
    ti.xcom[("attempt_1.approve", None, DECISION_KEY)] = Decision(
        chosen_options=["Approve"], params_input={"plan_json": json.dumps(edited)}, responded_by_user={"name": "ana"}
    ).dump()
    DAG_UNDER_TEST.get_task("attempt_1.commit").execute(replay_context(ti.at("attempt_1.commit"), None))
    source = CommittedPlan.model_validate(ti.xcom[("attempt_1.commit", None, COMMITTED_KEY)])
    assert source.edited and source.plan["provenance"]["created_at"] and source.plan_hash != SOURCE.hash
    carried = json.loads(json.dumps(ReplayRequest(plan=source.plan, plan_hash=source.plan_hash).conf()))
    replayed = Proposal.model_validate(plan_task(DAG_UNDER_TEST, FakeTI(dag_id=DAG_ID), carried))
    assert replayed.plan_hash == source.plan_hash and replayed.plan == source.plan
    assert replayed.replay_of == {"plan_hash": source.plan_hash, "source": None, "requested_by": None}


NO_REPLAY_ID = "kit_replay_off"
NO_REPLAY = claude_automation(
    NO_REPLAY_ID, catalog=CATALOG, settings=AutomationSettings(**{**SETTINGS.__dict__, "allow_replay": False})
)


def test_an_automation_that_allows_no_replay_refuses_one_before_anything_runs(no_gateway: Any) -> None:
    ti = FakeTI(dag_id=NO_REPLAY_ID)
    with pytest.raises(AirflowFailException, match=r"kit_replay_off does not accept replays \(.*allow_replay=False"):
        plan_task(NO_REPLAY, ti, request().conf())
    assert ti.xcom[("attempt_1.plan", None, OUTCOME_KEY)]["verdict"] == "replay_refused"
    assert ti.xcom[("attempt_1.plan", None, USAGE_KEY)]["calls"] == 0 and no_gateway.requests == []


def test_the_trigger_finds_an_automations_goal_param_in_its_plan_tasks_doc() -> None:
    """A replay must satisfy the trigger form: the goal goes into the param the automation reads it from."""
    from datetime import datetime

    from airflow.sdk import DAG, Param

    from airflow_claude import claude_automation_group
    from airflow_claude.automation.automation import goal_param_of

    with DAG("kit_goal_param", schedule=None, start_date=datetime(2026, 1, 1), params={"question": Param("x")}) as dag:
        claude_automation_group("ask", catalog=CATALOG, goal_param="question", settings=SETTINGS)
        claude_automation_group("fixed", catalog=CATALOG, goal="Count things.", settings=SETTINGS)
    assert goal_param_of(dag.get_task("ask.attempt_1.plan").doc_md) == "question"
    assert goal_param_of(dag.get_task("fixed.attempt_1.plan").doc_md) is None
    assert goal_param_of(DAG_UNDER_TEST.get_task("attempt_1.plan").doc_md) == "goal"
    assert request().run_conf("question")["question"] == SOURCE.goal
