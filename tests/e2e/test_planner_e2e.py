"""The planning call of an automation inside DAG runs of a REAL Airflow 3, against the offline Claude.

The ``FakeClaude`` server runs in this test process (a real HTTP server in a thread); the
Airflow workers reach it through the ``anthropic_default`` connection (the model gateway builds
its client with ``AnthropicHook``). One Airflow instance serves the module; its DAG folder is
``dags_planner/``, three whole-DAG automations whose task ``attempt_1.plan`` makes the planning
call. The fake answers by goal marker: ``E2E-OVERLOADED`` gets 529, ``E2E-SPEND-LIMIT`` gets the
spend-limit error, a plan request gets a two-step plan and a review request a ``done`` verdict.

What is about the gateway or the planner alone (the in-process retry counts, the SDK's retries
off, the retry policy's decisions) is tested in ``tests/unit/test_gateway.py`` and
``tests/unit/test_retry_policy.py``; here is what needs Airflow: its masker, its retries, its XCom.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from airflow_claude.examples.orders import catalog
from airflow_claude.plan import validate_plan
from airflow_claude.testing import FakeClaude
from airflow_claude.testing.fake_claude import COUNT_TOKENS_PATH, forced_tool_name
from tests.harness.airflow_instance import AirflowInstance

pytestmark = pytest.mark.e2e

DAGS_PLANNER = Path(__file__).parent / "dags_planner"
OK, OVERLOADED, SPEND_LIMIT = "planner_e2e_ok", "planner_e2e_overloaded", "planner_e2e_spend_limit"
STEPS = [  # read-only tools that need no database: the run can finish and be reviewed
    {"id": "check_orders", "tool": "check_quality", "args": {"rows": [], "min_rows": 0}},
    {"id": "revenue_by_region", "tool": "aggregate_revenue", "args": {"rows": [], "by": "region"}},
]

# distinctive secrets: none may reach a request body, a task log or an XCom
API_KEY = "sk-ant-e2e-apikey-7f3c9a1b5d"
ORDERS_API_PASSWORD = "pw-e2e-orders-5d2e8c4a01"
API_SECRET_VALUE = "var-e2e-apisecret-91b4e6f2"
SECRETS = (API_KEY, ORDERS_API_PASSWORD, API_SECRET_VALUE)
# typed into the trigger form: the key Airflow's masker knows once the gateway has read the
# connection, and templates that would pull the other two if anything rendered the goal
TEMPLATES = "Token: {{ var.value.api_secret }} pw: {{ conn.orders_api.password }}"
SECRET_GOAL = f"Report revenue. Key: {API_KEY} {TEMPLATES}"
MASKED_GOAL = f"Report revenue. Key: *** {TEMPLATES}"
RUN_TIMEOUT = 300.0
MESSAGES = "/v1/messages"


@dataclass
class Setup:
    fake: FakeClaude
    env: dict[str, str]
    runs: dict[str, str] = field(default_factory=dict)
    instances: list[AirflowInstance] = field(default_factory=list)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    fake = FakeClaude(api_key=API_KEY).start()  # a request with another key gets 401
    for path in (MESSAGES, COUNT_TOKENS_PATH):  # every request of these goals, the token count included
        fake.reply_overloaded(match={"contains": "E2E-OVERLOADED", "path": path})
        fake.reply_spend_limit(match={"contains": "E2E-SPEND-LIMIT", "path": path})
    fake.reply_tool_use("submit_plan", {"steps": STEPS}, match={"tool_name": "submit_plan"})
    fake.reply_tool_use(
        "submit_review",
        {"verdict": "done", "reason": "both checks ran", "summary": "no orders, no problems"},
        match={"tool_name": "submit_review"},
    )
    demo = tmp_path_factory.mktemp("planner_e2e_demo")
    env = {
        "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps({"conn_type": "anthropic", "host": fake.url, "password": API_KEY}),
        **AirflowInstance.connection_env(
            "orders_api", {"conn_type": "http", "host": "orders-api.example.com", "password": ORDERS_API_PASSWORD}
        ),
        "AIRFLOW_VAR_API_SECRET": API_SECRET_VALUE,
        "AIRFLOW_CLAUDE_DEMO_DIR": str(demo),
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",  # parse once: less CPU on a shared box
    }
    state = Setup(fake=fake, env=env)
    try:
        yield state
    finally:
        for instance in state.instances:
            instance.stop()
        fake.stop()


@pytest.fixture
def af(airflow_instance_factory: Any, setup: Setup) -> AirflowInstance:
    instance: AirflowInstance = airflow_instance_factory(DAGS_PLANNER, shared=True, extra_env=setup.env)
    if instance not in setup.instances:
        setup.instances.append(instance)
    return instance


@pytest.fixture
def runs(af: AirflowInstance, setup: Setup, e2e_timing: Any) -> dict[str, str]:
    """One run of each DAG, triggered once for the module, all at once."""
    if not setup.runs:
        t0 = time.monotonic()
        for dag_id in (OK, OVERLOADED, SPEND_LIMIT):
            af.wait_for_dag(dag_id, timeout=120)
        e2e_timing("planner DAGs visible", time.monotonic() - t0)
        setup.runs[OK] = af.trigger(OK, conf={"goal": SECRET_GOAL})
        for dag_id in (OVERLOADED, SPEND_LIMIT):
            setup.runs[dag_id] = af.trigger(dag_id)
    return setup.runs


def where_leaked(af: AirflowInstance, setup: Setup, run_id: str) -> list[str]:
    """Every place of the run (request bodies, task logs, XComs) that holds one of the secrets."""
    places: dict[str, str] = {"request bodies": setup.fake.all_request_text()}
    for task_id in ("attempt_1.plan", "attempt_1.review", "report"):
        places[f"log of {task_id}"] = af.task_log(OK, run_id, task_id, try_number=1)
    for task_id, key in (
        ("attempt_1.plan", "return_value"),
        ("attempt_1.plan", "usage"),
        ("attempt_1.review", "return_value"),
        ("attempt_1.review", "usage"),
        ("report", "report"),
    ):
        places[f"XCom {key} of {task_id}"] = json.dumps(af.xcom(OK, run_id, task_id, key=key))
    return [f"{secret[:12]}... in {place}" for place, text in places.items() for secret in SECRETS if secret in text]


def test_a_planned_run_is_valid_and_secrets_stay_masked(
    af: AirflowInstance, runs: dict[str, str], setup: Setup, e2e_timing: Any
) -> None:
    run_id = runs[OK]
    t0 = time.monotonic()
    state = af.wait_for_run(OK, run_id, timeout=RUN_TIMEOUT)
    e2e_timing("plan, steps, review run waited", time.monotonic() - t0)
    states = {(t["task_id"], t["map_index"]): t["state"] for t in af.task_instances(OK, run_id)}
    assert state == "success", states
    assert states[("attempt_1.plan", -1)] == states[("attempt_1.review", -1)] == "success"

    proposal = af.xcom(OK, run_id, "attempt_1.plan")
    plan = proposal["plan"]
    result = validate_plan(plan, catalog)
    assert result.ok, [str(i) for i in result.issues]
    assert result.plan is not None and proposal["plan_hash"] == result.plan.hash
    assert [s.id for s in result.plan.steps] == [s["id"] for s in STEPS]
    assert re.fullmatch(r"planner_e2e_ok_[0-9a-f]{8}_v1", result.plan.id)
    assert result.plan.goal == MASKED_GOAL

    sent = setup.fake.message_requests()
    ours = [r for r in sent if forced_tool_name(r.body) == "submit_plan" and "Report revenue. Key:" in r.text]
    assert len(ours) == 1
    request = ours[0]
    provenance = plan["provenance"]
    assert provenance["created_by"] == "claude" and provenance["prompt_template"] == "plan-v2"
    assert provenance["model"] == request.body["model"] == proposal["model"]
    assert provenance["catalog_fingerprint"] == catalog.fingerprint
    assert len(provenance["request_ids"]) == 1 and provenance["request_ids"][0].startswith("req_fake_")
    assert provenance["usage"]["input_tokens"] > 0 and provenance["usage"]["output_tokens"] > 0
    assert Decimal(provenance["cost_usd"]) > 0

    usage = af.xcom(OK, run_id, "attempt_1.plan", key="usage")
    assert usage["calls"] == 1 and len(usage["per_call"]) == 1 and usage["try_number"] == 1
    assert usage["input_tokens"] == provenance["usage"]["input_tokens"]
    assert usage["output_tokens"] == provenance["usage"]["output_tokens"]
    assert Decimal(usage["cost_usd"]) == Decimal(provenance["cost_usd"]) > 0
    assert usage["per_call"][0]["request_id"] == provenance["request_ids"][0]
    log = af.task_log(OK, run_id, "attempt_1.plan", try_number=1)
    assert "plan.validated" in log and "model.call" in log

    # the goal is data: masked, and its templates arrive verbatim (nothing renders it)
    assert f"<goal>\n{MASKED_GOAL}\n</goal>" in request.body["messages"][0]["content"][0]["text"]
    assert request.body["tool_choice"]["name"] == "submit_plan"
    # the key is sent as authentication (that is its job), and no secret is anywhere else
    assert request.headers.get("authorization") == f"Bearer {API_KEY}"
    leaks = where_leaked(af, setup, run_id)
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)


def test_an_overloaded_claude_is_retried_by_airflow(
    af: AirflowInstance, runs: dict[str, str], setup: Setup, e2e_timing: Any
) -> None:
    run_id = runs[OVERLOADED]
    t0 = time.monotonic()
    assert af.wait_for_run(OVERLOADED, run_id, timeout=RUN_TIMEOUT) == "failed"
    e2e_timing("overloaded run ended", time.monotonic() - t0)
    ti = af.task_instance(OVERLOADED, run_id, "attempt_1.plan")
    assert (ti["state"], ti["try_number"]) == ("failed", 2)  # ClaudeUnavailable: retried once, as configured
    assert [t["try_number"] for t in af.task_tries(OVERLOADED, run_id, "attempt_1.plan")] == [1, 2]
    for try_number in (1, 2):
        log = af.task_log(OVERLOADED, run_id, "attempt_1.plan", try_number=try_number)
        assert "ClaudeUnavailable" in log and "OverloadedError" in log
    first = af.task_log(OVERLOADED, run_id, "attempt_1.plan", try_number=1)
    assert "rate limited or unavailable" in first  # CLAUDE_RETRY_POLICY's decision: retry
    # the token count comes first; it is overloaded too, so each try made its bounded in-process
    # attempts there (CallPolicy default: 3) and never sent the message itself
    counts = [r for r in setup.fake.requests_to(COUNT_TOKENS_PATH) if "E2E-OVERLOADED" in r.text]
    assert len(counts) == 2 * 3 and {r.status for r in counts} == {529}
    assert [r for r in setup.fake.message_requests() if "E2E-OVERLOADED" in r.text] == []
    usage = af.xcom(OVERLOADED, run_id, "attempt_1.plan", key="usage")  # pushed on failure too
    assert usage["calls"] == 0 and usage["try_number"] == 2 and usage["error"].startswith("ClaudeUnavailable")


def test_a_spend_limit_fails_at_once_without_retrying(
    af: AirflowInstance, runs: dict[str, str], setup: Setup, e2e_timing: Any
) -> None:
    run_id = runs[SPEND_LIMIT]
    t0 = time.monotonic()
    assert af.wait_for_run(SPEND_LIMIT, run_id, timeout=RUN_TIMEOUT) == "failed"
    e2e_timing("spend-limit run ended", time.monotonic() - t0)
    ti = af.task_instance(SPEND_LIMIT, run_id, "attempt_1.plan")
    assert (ti["state"], ti["try_number"], ti["max_tries"]) == ("failed", 1, 3)  # retries=3 left unused
    assert [(t["try_number"], t["state"]) for t in af.task_tries(SPEND_LIMIT, run_id, "attempt_1.plan")] == [
        (1, "failed")
    ]
    log = af.task_log(SPEND_LIMIT, run_id, "attempt_1.plan", try_number=1)
    assert "SpendLimitReached" in log and "retrying cannot help" in log  # CLAUDE_RETRY_POLICY's decision
    hits = [r for r in setup.fake.requests if "E2E-SPEND-LIMIT" in r.text]
    assert [(r.path, r.status) for r in hits] == [(COUNT_TOKENS_PATH, 429)]  # asked once: no retry anywhere
    usage = af.xcom(SPEND_LIMIT, run_id, "attempt_1.plan", key="usage")
    assert usage["calls"] == 0 and usage["error"].startswith("SpendLimitReached")
