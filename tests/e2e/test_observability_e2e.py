"""Traces and metrics of real DAG runs: a real Airflow exports OTLP over HTTP to a receiver this test starts.

One Airflow instance (scheduler, dag-processor, api-server, triggerer) with ``[traces] otel_on`` and
``[metrics] otel_on``; two runs: a compiled plan whose last step fails and whose saga undoes a
publish, and an automation whose first plan needs a repair and whose first round needs a re-plan.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from airflow_claude.testing import FakeClaude
from airflow_claude.testing.fake_claude import forced_tool_name
from tests.harness.airflow_instance import AirflowInstance
from tests.harness.otlp_receiver import OtlpReceiver, Span

pytestmark = pytest.mark.e2e
DAGS = Path(__file__).parent / "dags_observability"
MODEL = "claude-sonnet-5-5"
API_KEY = "sk-ant-obs-e2e-key-4e8a1c77d2"
WAREHOUSE_TOKEN = "wh-e2e-token-5c1f9d27ab"  # the plan's literal argument, and a sensitive Variable
GOAL = "Load the source and summarize it."
SECRETS = (API_KEY, WAREHOUSE_TOKEN)
ERROR = 2  # OTLP status code


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """Round 1: an invalid plan, then (repair) a plan whose load fails; round 2: a good plan."""
    if forced_tool_name(body) == "submit_plan":
        first_turn = json.dumps(body["messages"][0])
        if "did not meet the goal" in first_turn:
            steps: list[dict[str, Any]] = [
                {"id": "load", "tool": "load_source", "args": {"source": "good"}},
                {
                    "id": "sum",
                    "tool": "summarize_load",
                    "depends_on": ["load"],
                    "args": {"rows": {"$ref": "steps.load.output.rows"}},
                },
            ]
        elif len(body["messages"]) == 1:
            steps = [{"id": "load", "tool": "load_everything", "args": {}}]  # unknown tool: a repair
        else:
            steps = [
                {"id": "load_broken", "tool": "load_source", "args": {"source": "broken"}},
                # Claude repeats a secret it saw: model output is masked like everything else
                {
                    "id": "sum",
                    "tool": "summarize_load",
                    "depends_on": ["load_broken"],
                    "args": {"rows": {"$ref": "steps.load_broken.output.rows"}, "note": API_KEY},
                },
            ]
        return {"tool_use": {"name": "submit_plan", "input": {"steps": steps}}}
    payload = json.loads(body["messages"][0]["content"][0]["text"])
    if any(s["status"] != "success" for s in payload["results"]):
        verdict = {"verdict": "replan", "reason": f"the load failed; the key was {API_KEY}"}
    else:
        verdict = {"verdict": "done", "reason": "all steps succeeded", "summary": "7 rows"}
    return {"tool_use": {"name": "submit_review", "input": verdict}}


@dataclass
class Runs:
    airflow: AirflowInstance
    receiver: OtlpReceiver
    fake: FakeClaude
    saga: str
    auto: str
    states: dict[str, str]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    receiver = OtlpReceiver().start()
    fake = FakeClaude(api_key=API_KEY)
    fake.responder = answer
    base = tmp_path_factory.mktemp("observability")
    conn = {"conn_type": "anthropic", "host": "", "password": API_KEY, "extra": {"model": MODEL}}
    with fake:
        conn["host"] = fake.url
        env = {
            "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(conn),
            "AIRFLOW_VAR_WAREHOUSE_PASSWORD": WAREHOUSE_TOKEN,
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            **receiver.env(),
        }
        airflow = AirflowInstance(home=base / "home", dags_folder=DAGS, extra_env=env, with_triggerer=True)
        airflow.start()
        try:
            for dag_id in ("obs_saga", "obs_auto"):
                airflow.wait_for_dag(dag_id, timeout=120)
                airflow.unpause(dag_id)
            saga, auto = airflow.trigger("obs_saga"), airflow.trigger("obs_auto")
            states = {
                "saga": airflow.wait_for_run("obs_saga", saga, timeout=300),
                "auto": airflow.wait_for_run("obs_auto", auto, timeout=420),
            }
            yield Runs(airflow, receiver, fake, saga, auto, states)
        finally:
            airflow.stop()
            receiver.stop()


def run_spans(runs: Runs, run_id: str, last_task: str, timeout: float = 60.0) -> list[Span]:
    """Every span of the run's trace, once the span of ``last_task`` (the run's last task) has arrived."""
    deadline = time.monotonic() + timeout
    while True:
        spans = runs.receiver.spans()
        traces = {s.trace_id for s in spans if s.attributes.get("airflow.dag_run.run_id") == run_id}
        if any(s.name == f"worker.{last_task}" and s.trace_id in traces for s in spans) or time.monotonic() > deadline:
            return [s for s in spans if s.trace_id in traces]
        time.sleep(1)


def one(spans: list[Span], name: str, parent: Span | None = None) -> Span:
    found = [s for s in spans if s.name == name and (parent is None or s.parent_span_id == parent.span_id)]
    assert len(found) == 1, f"{len(found)} spans named {name!r}; have {sorted({s.name for s in spans})}"
    return found[0]


def children(spans: list[Span], parent: Span, *, sdk: bool = False) -> list[Span]:
    """The spans under ``parent``, oldest first; without the anthropic SDK's own HTTP spans unless ``sdk``."""
    found = [s for s in spans if s.parent_span_id == parent.span_id and (sdk or not s.name.startswith("anthropic."))]
    return sorted(found, key=lambda s: s.start)


def test_a_compiled_plan_run_is_one_trace_of_steps_tools_and_a_compensation(runs: Runs) -> None:
    assert runs.states["saga"] == "failed"
    spans = run_spans(runs, runs.saga, "saga.outcome")
    assert len({s.trace_id for s in spans}) == 1, "one trace per DAG run"
    stamp = runs.airflow.xcom("obs_saga", runs.saga, "count", key="airflow_claude_provenance")
    for step_id, tool in (("count", "fetch"), ("announce", "publish"), ("store", "warehouse_write")):
        worker = one(spans, f"worker.{step_id}")
        step = one(spans, f"step {step_id}", parent=worker)
        call = one(spans, f"execute_tool {tool}", parent=step)
        assert step.attributes["airflow_claude.plan.id"] == "obs_saga"
        assert step.attributes["airflow_claude.plan.hash"] == stamp["plan_hash"]
        assert step.attributes["airflow_claude.step.id"] == step_id
        assert step.attributes["airflow_claude.try_number"] == 1
        assert str(step.attributes["airflow_claude.idempotency_key"]).startswith("ik_")
        assert call.attributes["gen_ai.operation.name"] == "execute_tool"
        assert call.attributes["gen_ai.tool.name"] == tool
        assert call.attributes["gen_ai.tool.call.id"] == step.attributes["airflow_claude.idempotency_key"]
    failed = one(spans, "step store")
    assert failed.status_code == ERROR and failed.attributes["error.type"] == "RuntimeError"
    assert "warehouse refused token ***" in failed.status_message
    undo_task = one(spans, "worker.saga.undo_announce")
    compensate = one(spans, "compensate announce", parent=undo_task)
    undo = one(spans, "step undo_announce", parent=compensate)
    one(spans, "execute_tool unpublish", parent=undo)


def test_an_automation_run_traces_plan_repair_validation_steps_review_and_replan(runs: Runs) -> None:
    assert runs.states["auto"] == "success"
    spans = run_spans(runs, runs.auto, "report")
    assert len({s.trace_id for s in spans}) == 1, "one trace per DAG run"

    plan_1 = one(spans, "worker.attempt_1.plan")
    (planning,) = children(spans, plan_1)
    assert planning.name.startswith("plan ") and planning.attributes["airflow_claude.attempts"] == 2
    calls = children(spans, planning)
    assert [s.name for s in calls] == [f"chat {MODEL}", f"validate {planning.name[5:]}"] * 2
    chat_plan, invalid, chat_repair, valid = calls
    assert (chat_plan.attributes["airflow_claude.purpose"], chat_repair.attributes["airflow_claude.purpose"]) == (
        "plan",
        "repair",
    )
    assert invalid.attributes["airflow_claude.valid"] is False
    assert "unknown_tool" in invalid.attributes["airflow_claude.issue_codes"]
    assert valid.attributes["airflow_claude.valid"] is True
    for chat in (chat_plan, chat_repair):
        assert chat.kind == 3  # CLIENT
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.provider.name"] == "anthropic"
        assert chat.attributes["gen_ai.request.model"] == MODEL
        assert str(chat.attributes["gen_ai.response.id"]).startswith("msg_")
        assert chat.attributes["gen_ai.usage.input_tokens"] > 0 and chat.attributes["gen_ai.usage.output_tokens"] > 0
        assert float(chat.attributes["airflow_claude.cost_usd"]) > 0
        assert [s.name for s in children(spans, chat, sdk=True)] == ["anthropic.messages.create"]

    broken = one(spans, "step load_broken")
    assert broken.status_code == ERROR
    assert one(spans, "execute_tool load_source", parent=broken).status_code == ERROR
    review_1 = one(spans, "worker.attempt_1.review")
    (chat_review,) = children(spans, review_1)
    assert chat_review.attributes["airflow_claude.purpose"] == "review"

    plan_2 = one(spans, "worker.attempt_2.plan")
    (replanning,) = children(spans, plan_2)
    assert [s.name for s in children(spans, replanning)] == [f"chat {MODEL}", f"validate {replanning.name[5:]}"]
    for step_id, tool in (("load", "load_source"), ("sum", "summarize_load")):
        step = one(spans, f"step {step_id}")
        assert step.status_code != ERROR and one(spans, f"execute_tool {tool}", parent=step)
        assert step.parent_span_id in {s.span_id for s in spans if s.name.startswith("worker.attempt_2.steps")}
    review_2 = one(spans, "worker.attempt_2.review")
    assert [s.attributes["airflow_claude.purpose"] for s in children(spans, review_2)] == ["review"]


def metric_sum(runs: Runs, name: str, **tags: str) -> float:
    return sum(
        p.value
        for p in runs.receiver.metric_points()
        if p.name == f"airflow.{name}" and all(p.attributes.get(k) == v for k, v in tags.items())
    )


def test_metrics_after_the_runs_equal_the_run_report(runs: Runs) -> None:
    report = runs.airflow.xcom("obs_auto", runs.auto, "report", key="report")
    calls = report["model_calls"]
    assert [c["purpose"] for c in calls] == ["plan", "repair", "review", "plan", "review"]
    deadline = time.monotonic() + 60
    while metric_sum(runs, "claude.model_calls") < len(calls) and time.monotonic() < deadline:
        time.sleep(1)  # task processes export at exit; the last ones may still be on their way
    time.sleep(3)  # and nothing more arrives after that
    assert metric_sum(runs, "claude.model_calls") == len(calls)  # only the automation calls Claude
    assert metric_sum(runs, "claude.model_calls", purpose="repair") == 1 == metric_sum(runs, "claude.plan_repairs")
    assert metric_sum(runs, "claude.tokens", kind="input") == report["tokens"]["input_tokens"]
    assert metric_sum(runs, "claude.tokens", kind="output") == report["tokens"]["output_tokens"]
    assert metric_sum(runs, "claude.tokens", kind="cache_read") == report["tokens"]["cache_read_input_tokens"]
    assert Decimal(int(metric_sum(runs, "claude.cost_microusd"))) / 1_000_000 == Decimal(report["cost_usd"])
    assert metric_sum(runs, "claude.plan_validation_failures", code="unknown_tool") == 1
    assert metric_sum(runs, "claude.steps", tool="load_source", status="failed") == 1
    assert metric_sum(runs, "claude.steps", tool="load_source", status="success") == 1
    assert metric_sum(runs, "claude.steps", tool="warehouse_write", status="failed") == 1
    assert metric_sum(runs, "claude.compensations", tool="unpublish") == 1
    assert metric_sum(runs, "claude.model_call.duration") == len(calls)  # one latency observation per call


def test_no_secret_and_no_prompt_text_leaves_in_any_span_or_metric(runs: Runs) -> None:
    run_spans(runs, runs.auto, "report")
    exported = runs.receiver.raw_text()
    assert "worker.attempt_1.plan" in exported and "airflow.claude.model_calls" in exported
    leaks = [secret[:10] for secret in SECRETS if secret in exported]
    assert not leaks, f"secrets exported: {leaks}"
    assert "***" in exported  # the masked failure messages are there, masked
    assert GOAL not in exported and "submit_plan" not in exported  # content capture is off: no prompt text
