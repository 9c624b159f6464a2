"""``ClaudePlanOperator`` inside DAG runs of a REAL Airflow 3, against the offline Claude.

The ``FakeClaude`` server runs in this test process (a real HTTP server in a thread); the
Airflow workers reach it through the ``anthropic_default`` connection. One Airflow instance
serves the module; its DAG folder is ``dags_planner/``. The fake answers by goal marker:
``E2E-OVERLOADED`` gets 529, ``E2E-SPEND-LIMIT`` gets the spend-limit error, anything else
asking for ``submit_plan`` gets the steps of the repo's nightly plan.
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
from airflow_claude.testing.fake_claude import COUNT_TOKENS_PATH
from tests.harness.airflow_instance import AirflowInstance

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DAGS_PLANNER = Path(__file__).parent / "dags_planner"
NIGHTLY_STEPS = json.loads((REPO / "dags" / "plans" / "nightly_orders_report.json").read_text())["steps"]
OK, OVERLOADED, SPEND_LIMIT = "planner_e2e_ok", "planner_e2e_overloaded", "planner_e2e_spend_limit"

# distinctive secrets: none may reach a request body, logs or XCom
API_KEY = "sk-ant-e2e-apikey-7f3c9a1b5d"
ORDERS_API_PASSWORD = "pw-e2e-orders-5d2e8c4a01"
API_SECRET_VALUE = "var-e2e-apisecret-91b4e6f2"
SECRETS = (API_KEY, ORDERS_API_PASSWORD, API_SECRET_VALUE)
RUN_TIMEOUT = 240.0
MESSAGES, COUNT_TOKENS = "/v1/messages", COUNT_TOKENS_PATH


@dataclass
class Setup:
    fake: FakeClaude
    env: dict[str, str]
    runs: dict[str, str] = field(default_factory=dict)
    instances: list[AirflowInstance] = field(default_factory=list)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    fake = FakeClaude(api_key=API_KEY).start()  # a request with another key gets 401
    for path in (MESSAGES, COUNT_TOKENS):  # every request of these goals, the token count included
        fake.reply_overloaded(match={"contains": "E2E-OVERLOADED", "path": path})
        fake.reply_spend_limit(match={"contains": "E2E-SPEND-LIMIT", "path": path})
    fake.reply_tool_use("submit_plan", {"steps": NIGHTLY_STEPS}, match={"tool_name": "submit_plan"})
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
        for dag_id in (OK, OVERLOADED, SPEND_LIMIT):
            setup.runs[dag_id] = af.trigger(dag_id)
    return setup.runs


def test_plan_in_a_dag_run_is_valid_and_secrets_stay_masked(
    af: AirflowInstance, runs: dict[str, str], setup: Setup, e2e_timing
):
    run_id = runs[OK]
    t0 = time.monotonic()
    assert af.wait_for_run(OK, run_id, timeout=RUN_TIMEOUT) == "success"
    e2e_timing("plan + check run waited", time.monotonic() - t0)
    assert {t["task_id"]: t["state"] for t in af.task_instances(OK, run_id)} == {
        "plan": "success",
        "check_plan": "success",
    }

    plan = af.xcom(OK, run_id, "plan")
    result = validate_plan(plan, catalog)
    assert result.ok, [str(i) for i in result.issues]
    assert result.plan is not None
    assert [s.id for s in result.plan.steps] == [s["id"] for s in NIGHTLY_STEPS]
    assert re.fullmatch(r"plan_[0-9a-f]{12}", result.plan.id)
    assert result.plan.goal == "Report revenue. Token: *** pw: ***"

    ours = [r for r in setup.fake.message_requests() if "Report revenue. Token:" in r.text]
    assert len(ours) == 1
    request = ours[0]
    provenance = plan["provenance"]
    assert provenance["created_by"] == "claude"
    assert provenance["model"] == request.body["model"]
    assert provenance["catalog_fingerprint"] == catalog.fingerprint
    assert len(provenance["request_ids"]) == 1 and provenance["request_ids"][0].startswith("req_fake_")
    assert provenance["usage"]["input_tokens"] > 0 and provenance["usage"]["output_tokens"] > 0
    assert Decimal(provenance["cost_usd"]) > 0

    usage = af.xcom(OK, run_id, "plan", key="usage")
    assert usage["calls"] == 1 and len(usage["per_call"]) == 1 and usage["try_number"] == 1
    assert usage["input_tokens"] == provenance["usage"]["input_tokens"]
    assert usage["output_tokens"] == provenance["usage"]["output_tokens"]
    assert Decimal(usage["cost_usd"]) == Decimal(provenance["cost_usd"]) > 0
    assert usage["per_call"][0]["request_id"] == provenance["request_ids"][0]

    checked = af.xcom(OK, run_id, "check_plan")
    assert checked == {
        "plan_id": result.plan.id,
        "plan_hash": result.plan.hash,
        "steps": [s["id"] for s in NIGHTLY_STEPS],
        "goal": "Report revenue. Token: *** pw: ***",
    }

    # the key is sent as authentication (that is its job), and nothing secret is in any body
    assert request.headers.get("authorization") == f"Bearer {API_KEY}"
    assert "Token: *** pw: ***" in request.text
    assert request.body["tool_choice"]["name"] == "submit_plan"
    sent = setup.fake.all_request_text()
    for secret in SECRETS:
        assert secret not in sent
    # ... nor in what Airflow stored and shows
    rendered = af.task_instance(OK, run_id, "plan").get("rendered_fields") or {}
    assert "goal" in rendered
    log = af.task_log(OK, run_id, "plan", try_number=1)
    assert "plan.validated" in log
    for secret in SECRETS:
        assert secret not in json.dumps(rendered)
        assert secret not in json.dumps(plan) and secret not in json.dumps(usage)
        assert secret not in log


def test_overloaded_claude_fails_the_plan_task(af: AirflowInstance, runs: dict[str, str], setup: Setup, e2e_timing):
    run_id = runs[OVERLOADED]
    t0 = time.monotonic()
    ti = af.wait_for_task_state(OVERLOADED, run_id, "plan", ("failed", "up_for_retry"), timeout=RUN_TIMEOUT)
    e2e_timing("overloaded plan task ended", time.monotonic() - t0)
    assert ti["state"] == "failed"  # retries=0: ClaudeUnavailable would be retried, but none are left
    assert ti["try_number"] == 1
    assert af.wait_for_run(OVERLOADED, run_id, timeout=60) == "failed"
    log = af.task_log(OVERLOADED, run_id, "plan", try_number=1)
    assert "ClaudeUnavailable" in log and "OverloadedError" in log
    # the token count comes first; it is overloaded too, so the planner made its bounded
    # in-process attempts there (CallPolicy default: 3) and never sent the message itself
    counts = [r for r in setup.fake.requests_to(COUNT_TOKENS) if "E2E-OVERLOADED" in r.text]
    assert len(counts) == 3 and {r.status for r in counts} == {529}
    assert [r for r in setup.fake.message_requests() if "E2E-OVERLOADED" in r.text] == []
    usage = af.xcom(OVERLOADED, run_id, "plan", key="usage")
    assert usage["calls"] == 0 and usage["error"].startswith("ClaudeUnavailable")


def test_spend_limit_fails_at_once_without_retrying(
    af: AirflowInstance, runs: dict[str, str], setup: Setup, e2e_timing
):
    run_id = runs[SPEND_LIMIT]
    t0 = time.monotonic()
    ti = af.wait_for_task_state(SPEND_LIMIT, run_id, "plan", ("failed", "up_for_retry"), timeout=RUN_TIMEOUT)
    e2e_timing("spend-limit plan task ended", time.monotonic() - t0)
    assert (ti["state"], ti["try_number"], ti["max_tries"]) == ("failed", 1, 3)  # retries=3 left unused
    assert [(t["try_number"], t["state"]) for t in af.task_tries(SPEND_LIMIT, run_id, "plan")] == [(1, "failed")]
    assert af.wait_for_run(SPEND_LIMIT, run_id, timeout=60) == "failed"
    log = af.task_log(SPEND_LIMIT, run_id, "plan", try_number=1)
    assert "SpendLimitReached" in log
    hits = [r for r in setup.fake.requests if "E2E-SPEND-LIMIT" in r.text]
    assert [(r.path, r.status) for r in hits] == [(COUNT_TOKENS, 429)]  # asked once: no retry anywhere
    usage = af.xcom(SPEND_LIMIT, run_id, "plan", key="usage")
    assert usage["calls"] == 0 and usage["error"].startswith("SpendLimitReached")
