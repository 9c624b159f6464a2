"""OpenLineage through a REAL Airflow 3 (scheduler, dag-processor, api-server) with the provider on.

The provider sends to an HTTP receiver this module starts on localhost (the OpenLineage HTTP
transport, configured by ``AIRFLOW__OPENLINEAGE__TRANSPORT``). One Airflow instance serves the
module; its DAG folder is ``dags_lineage/``: a compiled plan whose tools declare Assets
(``lineage_tools.py``) and ``lineage_consumer``, a DAG scheduled on the Asset the plan writes;
an automation (``lineage_auto``, planned by the offline Claude) whose run-time step writes another
Asset through the automation's ``AssetAlias``, and ``lineage_summary_consumer``, scheduled on it.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from airflow_claude.observability.lineage import FACET_NAME, SCHEMA_URL, facet_schema
from airflow_claude.plan.loader import load_plan_file
from airflow_claude.runtime.provenance import PROVENANCE_XCOM_KEY
from airflow_claude.testing import FakeClaude
from airflow_claude.testing.fake_claude import forced_tool_name
from tests.harness.airflow_instance import AirflowInstance
from tests.harness.lineage_receiver import LineageReceiver

pytestmark = pytest.mark.e2e

DAGS_LINEAGE = Path(__file__).parent / "dags_lineage"
PLAN = "lineage_plan"
CONSUMER = "lineage_consumer"
NAMESPACE = "airflow-claude-e2e"
AUTOMATION = "lineage_auto"
SUMMARY_CONSUMER = "lineage_summary_consumer"
MODEL = "claude-sonnet-5-5"
RUN_TIMEOUT = 240.0


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """The offline Claude: one step that publishes a summary (review is only asked on failure)."""
    if forced_tool_name(body) == "submit_plan":
        steps = [{"id": "summarize", "tool": "publish_summary", "args": {"text": "3 orders"}}]
        return {"tool_use": {"name": "submit_plan", "input": {"steps": steps}}}
    return {"tool_use": {"name": "submit_review", "input": {"verdict": "done", "reason": "ok"}}}


@dataclass
class Setup:
    dags: Path
    env: dict[str, str]
    receiver: LineageReceiver
    tools: ModuleType
    runs: dict[str, str] = field(default_factory=dict)
    instances: list[AirflowInstance] = field(default_factory=list)


def _import_tools(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("lineage_tools", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["lineage_tools"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    base = tmp_path_factory.mktemp("lineage_e2e")
    dags = base / "dags"
    shutil.copytree(DAGS_LINEAGE, dags, ignore=shutil.ignore_patterns("__pycache__"))
    tools = _import_tools(dags / "lineage_tools.py")
    receiver = LineageReceiver().start()
    claude = FakeClaude()
    claude.responder = answer
    claude.__enter__()
    conn = {"conn_type": "anthropic", "host": claude.url, "password": "e2e-key", "extra": {"model": MODEL}}
    env = {
        **receiver.transport_env(NAMESPACE),
        "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(conn),
        **AirflowInstance.connection_env("lineage_secret", {"conn_type": "generic", "password": tools.CONN_SECRET}),
    }
    state = Setup(dags=dags, env=env, receiver=receiver, tools=tools)
    yield state
    for instance in state.instances:
        instance.stop()
    receiver.stop()
    claude.__exit__(None, None, None)


@pytest.fixture
def af(airflow_instance_factory: Any, setup: Setup) -> AirflowInstance:
    instance: AirflowInstance = airflow_instance_factory(setup.dags, shared=True, extra_env=setup.env)
    if instance not in setup.instances:
        setup.instances.append(instance)
    return instance


@pytest.fixture
def plan_run(af: AirflowInstance, setup: Setup, e2e_timing: Any) -> str:
    """The plan, run once for the module, with the consumer DAG unpaused first."""
    if PLAN not in setup.runs:
        t0 = time.monotonic()
        for dag_id in (PLAN, CONSUMER):
            af.wait_for_dag(dag_id, timeout=120)
            af.unpause(dag_id)
        e2e_timing("lineage DAGs visible", time.monotonic() - t0)
        run_id = af.trigger(PLAN)
        t0 = time.monotonic()
        assert af.wait_for_run(PLAN, run_id, timeout=RUN_TIMEOUT) == "success"
        e2e_timing("lineage plan run", time.monotonic() - t0)
        setup.runs[PLAN] = run_id
    return setup.runs[PLAN]


def _task_events(receiver: LineageReceiver, task_id: str, event_type: str) -> list[dict[str, Any]]:
    job = f"{PLAN}.{task_id}"
    return receiver.wait_for(
        lambda e: e.get("eventType") == event_type and e.get("job", {}).get("name") == job, timeout=60
    )


def test_step_events_carry_the_facet_and_the_tools_datasets(
    af: AirflowInstance, plan_run: str, setup: Setup, e2e_timing: Any
) -> None:
    import jsonschema

    t0 = time.monotonic()
    tools = setup.tools
    plan_hash = load_plan_file(setup.dags / "lineage_plan_files" / f"{PLAN}.json", tools.catalog).plan_hash
    validator = jsonschema.Draft202012Validator({**facet_schema(), "$ref": "#/$defs/AirflowClaudeRunFacet"})
    expected_tools = {"count_orders": "read_orders", "publish": "publish_report", "check_conn": "check_connection"}
    for step_id, tool in expected_tools.items():
        (complete,) = _task_events(setup.receiver, step_id, "COMPLETE")
        assert complete["job"]["namespace"] == NAMESPACE
        facet = complete["run"]["facets"][FACET_NAME]
        validator.validate(facet)
        stamp = af.xcom(PLAN, plan_run, step_id, key=PROVENANCE_XCOM_KEY)
        assert facet["_schemaURL"] == SCHEMA_URL
        assert facet["_producer"].startswith("https://github.com/airflow-claude/airflow-claude")
        assert {k: v for k, v in facet.items() if not k.startswith("_")} == {
            "kind": "plan_step",
            "planId": PLAN,
            "planHash": plan_hash,
            "stepId": step_id,
            "tool": tool,
            "toolVersion": "1",
            "catalogFingerprint": tools.catalog.fingerprint,
            "idempotencyKey": stamp["idempotency_key"],
            "argsFingerprint": stamp["args_fingerprint"],
            "tryNumber": 1,
        }
        # the START event already names the step (its key is only known once the arguments resolved)
        (start,) = _task_events(setup.receiver, step_id, "START")
        assert start["run"]["facets"][FACET_NAME]["stepId"] == step_id
        assert start["run"]["runId"] == complete["run"]["runId"]

    def datasets(step_id: str, side: str) -> list[tuple[str, str]]:
        (event,) = _task_events(setup.receiver, step_id, "COMPLETE")
        return [(d["namespace"], d["name"]) for d in event.get(side, [])]

    assert datasets("count_orders", "inputs") == [("file", "/lineage/orders.csv")]
    assert datasets("count_orders", "outputs") == []
    assert datasets("publish", "outputs") == [("file", "/lineage/reports/daily.md")]
    assert datasets("check_conn", "inputs") == [] and datasets("check_conn", "outputs") == []
    e2e_timing("lineage events checked", time.monotonic() - t0)


def test_the_asset_the_plan_writes_triggers_the_dag_scheduled_on_it(
    af: AirflowInstance, plan_run: str, setup: Setup, e2e_timing: Any
) -> None:
    t0 = time.monotonic()
    deadline = time.monotonic() + 90
    while not (runs := af.get(f"/dags/{CONSUMER}/dagRuns", params={"limit": 10})["dag_runs"]):
        assert time.monotonic() < deadline, f"{CONSUMER} got no run after the plan wrote its Asset"
        time.sleep(1.0)
    assert [r["run_type"] for r in runs] == ["asset_triggered"]
    assert af.wait_for_run(CONSUMER, runs[0]["dag_run_id"], timeout=RUN_TIMEOUT) == "success"
    events = af.get("/assets/events", params={"limit": 20})["asset_events"]
    published = [e for e in events if e["uri"] == setup.tools.REPORT.uri]
    assert len(published) == 1 and published[0]["source_dag_id"] == PLAN and published[0]["source_task_id"] == "publish"
    e2e_timing("consumer run (asset-triggered)", time.monotonic() - t0)


def _wait_for_runs(af: AirflowInstance, dag_id: str, timeout: float = 90) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while not (runs := af.get(f"/dags/{dag_id}/dagRuns", params={"limit": 10})["dag_runs"]):
        assert time.monotonic() < deadline, f"{dag_id} got no run"
        time.sleep(1.0)
    return list(runs)


def test_a_run_time_step_writes_its_asset_through_the_alias_and_model_tasks_report_usage(
    af: AirflowInstance, plan_run: str, setup: Setup, e2e_timing: Any
) -> None:
    t0 = time.monotonic()
    for dag_id in (AUTOMATION, SUMMARY_CONSUMER):
        af.wait_for_dag(dag_id, timeout=120)
        af.unpause(dag_id)
    run_id = af.trigger(AUTOMATION)
    assert af.wait_for_run(AUTOMATION, run_id, timeout=RUN_TIMEOUT) == "success"
    e2e_timing("automation run", time.monotonic() - t0)

    # the step's tool declared SUMMARY: added to the automation's alias, it triggered the consumer
    runs = _wait_for_runs(af, SUMMARY_CONSUMER)
    assert [r["run_type"] for r in runs] == ["asset_triggered"]
    events = af.get("/assets/events", params={"limit": 50})["asset_events"]
    summary = [e for e in events if e["uri"] == setup.tools.SUMMARY.uri]
    assert len(summary) == 1 and summary[0]["source_dag_id"] == AUTOMATION
    assert summary[0]["source_task_id"] == "attempt_1.steps" and summary[0]["extra"]["step_id"] == "summarize"

    def complete(task_id: str) -> dict[str, Any]:
        job = f"{AUTOMATION}.{task_id}"
        (event,) = setup.receiver.wait_for(
            lambda e: e.get("eventType") == "COMPLETE" and e.get("job", {}).get("name") == job, timeout=60
        )
        return event

    step = complete("attempt_1.steps")
    facet = step["run"]["facets"][FACET_NAME]
    assert facet["kind"] == "plan_step" and facet["stepId"] == "summarize" and facet["tool"] == "publish_summary"
    assert facet["automationId"] == AUTOMATION and facet["round"] == 1 and facet["idempotencyKey"].startswith("ik_")
    assert facet["catalogFingerprint"] == setup.tools.catalog.fingerprint
    assert [(d["namespace"], d["name"]) for d in step["outputs"]] == [("file", "/lineage/reports/summary.md")]
    proposal = af.xcom(AUTOMATION, run_id, "attempt_1.plan")
    assert facet["planId"] == proposal["plan"]["id"] and facet["planHash"] == proposal["plan_hash"]

    plan = complete("attempt_1.plan")["run"]["facets"][FACET_NAME]
    usage = af.xcom(AUTOMATION, run_id, "attempt_1.plan", key="usage")
    assert plan["kind"] == "plan" and plan["model"] == MODEL and plan["planId"] == proposal["plan"]["id"]
    assert plan["usage"]["calls"] == usage["calls"] == 1
    assert plan["usage"]["input"] == usage["input_tokens"] > 0
    assert plan["usage"]["output"] == usage["output_tokens"] and plan["usage"]["costUsd"] == usage["cost_usd"]


def test_no_secret_reaches_any_lineage_event(af: AirflowInstance, plan_run: str, setup: Setup) -> None:
    tools = setup.tools
    # the secrets were really there: the argument reached the tool, the connection had its password
    assert af.xcom(PLAN, plan_run, "publish")["note"] == "signed ***"
    assert af.xcom(PLAN, plan_run, "check_conn") == {"has_password": True, "password": "***"}
    # wait for the run-level COMPLETE event (sent by the scheduler after the last task's events)
    setup.receiver.wait_for(lambda e: e.get("eventType") == "COMPLETE" and e.get("job", {}).get("name") == PLAN)
    bodies = setup.receiver.bodies()
    assert len(bodies) >= 8  # START and COMPLETE of the run and of each of the three steps
    for secret in (tools.ARG_SECRET, tools.CONN_SECRET):
        leaking = [
            (event.get("eventType"), event.get("job", {}).get("name"), _paths_to(event, secret))
            for event in map(json.loads, bodies)
            if secret in json.dumps(event)
        ]
        assert leaking == [], f"a secret reached these lineage events (type, job, where): {leaking}"


def _paths_to(value: Any, needle: str, path: str = "$") -> list[str]:
    """Where in ``value`` a string containing ``needle`` is (JSON paths)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _paths_to(v, needle, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _paths_to(v, needle, f"{path}[{i}]")]
    return [path] if isinstance(value, str) and needle in value else []
