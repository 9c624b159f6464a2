"""See and replay (issue 13) through a real Airflow: the plugin's pages and API, headless Chromium, replay.

One deployment for the module (LocalExecutor, SQLite, a triggerer) with the simple auth manager's
users ``admin`` (Admin) and ``viewer`` (Viewer); approval is off. One source run of the automation
``ui_orders`` (plan, three steps, review: two model calls) and one run of the compiled plan
``ui_compiled_plan`` come first; the replays then start together (the run page's button, the
``airflow-claude replay`` CLI, the JSON API into ``ui_orders_changed``, whose catalog renamed a
parameter since, and the compiled run's page button) and must not ask the offline Claude anything.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from airflow_claude.plan.model import Plan
from airflow_claude.plan.validator import validate_plan
from airflow_claude.testing import FakeClaude
from airflow_claude.testing.fake_claude import forced_tool_name, load_rules
from tests.harness.airflow_instance import AirflowInstance
from tests.harness.browser import Browser, is_png
from tests.harness.rest import seg

pytestmark = pytest.mark.e2e
DAGS = Path(__file__).parent / "dags_ui"
MODEL = "claude-sonnet-5-5"
PREFIX = "/airflow-claude"
SECRET = "ui-e2e-partner-token-5b7c1d9e"
GOAL = "Count the orders, fetch the EMEA partner rate and summarize both."
STEP_IDS = ["count", "rate", "summarize"]
RUN_TIMEOUT = 180.0
COMPILED_LOGICAL_DATE = "2026-11-30T00:00:00+00:00"
SOURCE_CONF = {"goal": GOAL, "ticket": "OPS-1234"}  # a replay keeps the source run's conf (its params)


def plan_steps() -> list[dict[str, Any]]:
    return [
        {"id": "count", "tool": "count_rows", "args": {"source": "orders"}},
        {"id": "rate", "tool": "partner_rate", "args": {"region": "emea"}},
        {
            "id": "summarize",
            "tool": "summarize_counts",
            "depends_on": ["count", "rate"],
            "args": {"rows": {"$ref": "steps.count.output.rows"}, "rate": {"$ref": "steps.rate.output.rate"}},
        },
    ]


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """The offline Claude: the plan above, then a ``done`` review."""
    if forced_tool_name(body) == "submit_plan":
        return {"tool_use": {"name": "submit_plan", "input": {"steps": plan_steps()}}}
    review = {"verdict": "done", "reason": "every step succeeded", "summary": "42 rows at 1.25"}
    return {"tool_use": {"name": "submit_review", "input": review}}


def load_tools() -> ModuleType:
    """The DAG folder's tool module (``ui_tools``), for the catalogs the automations validate against."""
    spec = importlib.util.spec_from_file_location("ui_e2e_tools", DAGS / "ui_tools.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeClaude]:
    server = FakeClaude()
    server.responder = answer
    with server:
        yield server


@pytest.fixture(scope="module")
def airflow(fake: FakeClaude, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowInstance]:
    base = tmp_path_factory.mktemp("ui")
    anthropic = {"conn_type": "anthropic", "host": fake.url, "password": "e2e-key", "extra": {"model": MODEL}}
    partner = {"conn_type": "http", "host": "partner.invalid", "password": SECRET}
    env = {
        **AirflowInstance.connection_env("anthropic_default", anthropic),
        **AirflowInstance.connection_env("partner_api", partner),
        "AIRFLOW_CLAUDE_DEMO_DIR": str(base / "demo"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__PARALLELISM": "6",
    }
    dags = base / "dags"  # a copy: a test changes a plan file
    shutil.copytree(DAGS, dags, ignore=shutil.ignore_patterns("__pycache__"))
    instance = AirflowInstance(home=base / "home", dags_folder=dags, extra_env=env, with_triggerer=True)
    instance.start()
    try:
        for dag_id in ("ui_orders", "ui_orders_changed", "ui_compiled_plan"):
            instance.wait_for_dag(dag_id, timeout=120)
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def tokens(airflow: AirflowInstance) -> dict[str, str]:
    """A bearer token per user, from the generated password file (the harness itself logs in as admin)."""
    creds = airflow.admin_credentials()
    assert {"admin", "viewer"} <= set(creds), f"password file {airflow.admin_password_file} holds {sorted(creds)}"
    found = {}
    with httpx.Client(base_url=airflow.base_url, trust_env=False, timeout=30) as client:
        for user in ("admin", "viewer"):
            resp = client.post("/auth/token", json={"username": user, "password": creds[user]})
            assert resp.status_code in (200, 201), (user, resp.status_code, resp.text)
            found[user] = str(resp.json()["access_token"])
    return found


@pytest.fixture(autouse=True)
def _component_logs_on_failure(request: pytest.FixtureRequest) -> None:
    """Let tests/e2e/conftest.py attach the component logs to a failed test's report, as its factory does."""
    if "airflow" not in request.fixturenames:
        return
    instance = request.getfixturevalue("airflow")
    for plugin in request.config.pluginmanager.get_plugins():
        key = getattr(plugin, "_INSTANCES_KEY", None)
        if key is not None and str(getattr(plugin, "__file__", "")).endswith(str(Path("e2e", "conftest.py"))):
            request.node.stash[key] = [instance]


@dataclass(frozen=True)
class Source:
    """The automation run every replay starts from, and the compiled-plan run beside it."""

    dag_id: str
    run_id: str
    report: dict[str, Any]
    plan: dict[str, Any]
    plan_hash: str
    compiled_run_id: str


@pytest.fixture(scope="module")
def source(airflow: AirflowInstance) -> Source:
    run_id = airflow.trigger("ui_orders", conf=SOURCE_CONF)
    compiled = airflow.trigger("ui_compiled_plan", logical_date=COMPILED_LOGICAL_DATE)  # a run with a data interval
    state = airflow.wait_for_run("ui_orders", run_id, timeout=RUN_TIMEOUT)
    report = airflow.xcom("ui_orders", run_id, "report", key="report")
    assert state == "success", (report.get("verdict"), report.get("reason"), airflow.log_tails(40))
    assert airflow.wait_for_run("ui_compiled_plan", compiled, timeout=RUN_TIMEOUT) == "success"
    proposal = airflow.xcom("ui_orders", run_id, "attempt_1.plan")
    digest = report["rounds"][0]["plan_hash"]
    assert proposal["plan_hash"] == digest == Plan.model_validate(proposal["plan"]).hash
    return Source("ui_orders", run_id, report, proposal["plan"], digest, compiled)


def plugin(airflow: AirflowInstance, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
    """One call to the plugin (or any api-server path) with or without a bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=airflow.base_url, trust_env=False, timeout=60) as client:
        return client.request(method, path, headers=headers, **kwargs)


def run_path(dag_id: str, run_id: str) -> str:
    return f"{seg(dag_id)}/{seg(run_id)}"


def run_ids(airflow: AirflowInstance, dag_id: str) -> set[str]:
    return {r["dag_run_id"] for r in airflow.get(f"/dags/{seg(dag_id)}/dagRuns")["dag_runs"]} - {None}


def wait_new_run(airflow: AirflowInstance, dag_id: str, before: set[str], timeout: float = 30.0) -> str:
    """The one run of ``dag_id`` that did not exist in ``before`` (waits for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = run_ids(airflow, dag_id) - before
        if new:
            assert len(new) == 1, new
            return new.pop()
        time.sleep(0.5)
    raise AssertionError(f"no new run of {dag_id} within {timeout:.0f}s")


def step_states(airflow: AirflowInstance, dag_id: str, run_id: str) -> dict[str, str]:
    """Step id -> state of the first round's mapped step task instances."""
    return {
        str(ti.get("rendered_map_index")): str(ti["state"])
        for ti in airflow.task_instances(dag_id, run_id)
        if ti["task_id"] == "attempt_1.steps"
    }


@dataclass(frozen=True)
class Replays:
    """Replays started together once the source run is done; ``model_requests`` counted before."""

    model_requests: int
    button: str
    button_page: Path
    cli: str
    cli_output: str
    changed: str
    compiled: str


@pytest.fixture(scope="module")
def replays(airflow: AirflowInstance, source: Source, tokens: dict[str, str], fake: FakeClaude) -> Replays:
    before_requests = len(fake.message_requests())
    # 1. the run page's replay button, in headless Chromium
    before = run_ids(airflow, "ui_orders")
    with Browser() as browser:
        browser.open(
            f"{airflow.base_url}{PREFIX}/runs/{run_path(source.dag_id, source.run_id)}", "#steps", token=tokens["admin"]
        )
        browser.click("#replay-button")
        try:
            link = browser.wait_for("#replay-result a#replay-run-link", timeout=30)
        except AssertionError:
            result = browser.find_all("#replay-result")
            raise AssertionError(f"the replay button answered: {result[0].text if result else '?'}") from None
        button = wait_new_run(airflow, "ui_orders", before)
        assert link.text == f"ui_orders / {button}", link.text
        assert link.get_attribute("href").endswith(f"{PREFIX}/runs/{run_path('ui_orders', button)}")
        page = browser.screenshot("replay_started")
        # the same button on the compiled-plan run's page: a new run of that DAG, same plan and interval
        before = run_ids(airflow, "ui_compiled_plan")
        browser.open(
            f"{airflow.base_url}{PREFIX}/runs/{run_path('ui_compiled_plan', source.compiled_run_id)}",
            "#steps",
            token=tokens["admin"],
        )
        browser.click("#replay-button")
        compiled_link = browser.wait_for("#replay-result a#replay-run-link", timeout=30)
        compiled = wait_new_run(airflow, "ui_compiled_plan", before)
        assert compiled_link.text == f"ui_compiled_plan / {compiled}", compiled_link.text
        browser.screenshot("compiled_replay_started")
    # 2. the CLI (a thin client of the plugin's API)
    before = run_ids(airflow, "ui_orders")
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "airflow-claude"),
            "replay",
            source.dag_id,
            source.run_id,
            "--url",
            airflow.base_url,
            "--token",
            tokens["admin"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    cli = wait_new_run(airflow, "ui_orders", before)
    # 3. the JSON API, into the automation whose catalog changed since
    resp = plugin(
        airflow,
        "POST",
        f"{PREFIX}/api/replay",
        tokens["admin"],
        json={
            "source": {"dag_id": source.dag_id, "run_id": source.run_id},
            "plan_hash": source.plan_hash,
            "plan": None,
            "target_dag_id": "ui_orders_changed",
        },
    )
    assert resp.status_code == 200, resp.text
    started = resp.json()
    assert started["dag_id"] == "ui_orders_changed" and started["plan_hash"] == source.plan_hash
    return Replays(before_requests, button, page, cli, done.stdout, str(started["run_id"]), compiled)


def finish(airflow: AirflowInstance, dag_id: str, run_id: str) -> tuple[str, dict[str, Any]]:
    state = airflow.wait_for_run(dag_id, run_id, timeout=RUN_TIMEOUT)
    return state, airflow.xcom(dag_id, run_id, "report", key="report")


# -------------------------------------------------------------------------------------------- tests


def test_plugin_enforces_auth_and_never_shows_a_secret(
    airflow: AirflowInstance, source: Source, tokens: dict[str, str]
) -> None:
    admin, viewer = tokens["admin"], tokens["viewer"]
    run = run_path(source.dag_id, source.run_id)
    replay_body = {
        "source": {"dag_id": source.dag_id, "run_id": source.run_id},
        "plan_hash": source.plan_hash,
        "plan": None,
        "target_dag_id": None,
    }
    # no token, or a forged one: 401 on the JSON API and on the HTML pages alike
    assert plugin(airflow, "GET", f"{PREFIX}/api/runs").status_code == 401
    assert plugin(airflow, "GET", f"{PREFIX}/").status_code == 401
    assert plugin(airflow, "GET", f"{PREFIX}/runs/{run}").status_code == 401
    assert plugin(airflow, "GET", f"{PREFIX}/api/runs", token="not-a-jwt").status_code == 401
    assert plugin(airflow, "POST", f"{PREFIX}/api/replay", json=replay_body).status_code == 401
    # a viewer reads, but may not start runs
    assert plugin(airflow, "GET", f"{PREFIX}/api/runs", viewer).status_code == 200
    refused = plugin(airflow, "POST", f"{PREFIX}/api/replay", viewer, json=replay_body)
    assert refused.status_code == 403, refused.text
    assert run_ids(airflow, "ui_orders") == {source.run_id}, "the refused replay started a run"
    # an admin sees the run, with its goal, verdict, cost and model calls
    listed = plugin(airflow, "GET", f"{PREFIX}/api/runs", admin)
    assert listed.status_code == 200, listed.text
    runs = {(r["dag_id"], r["run_id"]): r for r in listed.json()["runs"]}
    summary = runs[(source.dag_id, source.run_id)]
    assert summary["kind"] == "automation" and summary["goal"] == GOAL and summary["state"] == "success"
    assert summary["verdict"] == "done" and summary["model_calls"] == 2
    assert summary["plan_hash"] == source.plan_hash
    assert Decimal(summary["cost_usd"]) == Decimal(source.report["cost_usd"]) > 0
    compiled = runs[("ui_compiled_plan", source.compiled_run_id)]
    assert compiled["kind"] == "plan" and compiled["model_calls"] == 0
    filtered = plugin(airflow, "GET", f"{PREFIX}/api/runs", admin, params={"dag_id": "ui_compiled_plan"}).json()
    assert {r["dag_id"] for r in filtered["runs"]} == {"ui_compiled_plan"}
    # the secret the partner_rate step handled was masked in XCom, and no page or answer shows it
    rate_index = next(i for i, s in enumerate(source.plan["steps"]) if s["id"] == "rate")
    rate = airflow.xcom(source.dag_id, source.run_id, "attempt_1.steps", map_index=rate_index)
    assert "***" in json.dumps(rate) and SECRET not in json.dumps(rate), rate
    answers = {
        "list page": plugin(airflow, "GET", f"{PREFIX}/", admin),
        "run page": plugin(airflow, "GET", f"{PREFIX}/runs/{run}", admin),
        "list api": listed,
        "run api": plugin(airflow, "GET", f"{PREFIX}/api/runs/{run}", admin),
        "export": plugin(airflow, "GET", f"{PREFIX}/api/runs/{run}/export", admin),
    }
    for what, resp in answers.items():
        assert resp.status_code == 200, (what, resp.status_code, resp.text[:500])
        assert SECRET not in resp.text, f"the partner token reached the {what}"
    assert "text/html" in answers["run page"].headers["content-type"]
    assert "partner_rate" in answers["run page"].text and GOAL in answers["list page"].text


def test_run_pages_in_headless_chromium(airflow: AirflowInstance, source: Source, tokens: dict[str, str]) -> None:
    listed = {r["run_id"]: r for r in plugin(airflow, "GET", f"{PREFIX}/api/runs", tokens["admin"]).json()["runs"]}
    row = f'tr.run[data-dag-id="{source.dag_id}"][data-run-id="{source.run_id}"]'
    with Browser() as browser:
        browser.open(f"{airflow.base_url}{PREFIX}/", "main", token=tokens["admin"])
        text = browser.wait_for(row).text
        assert GOAL in text and f"${listed[source.run_id]['cost_usd']}" in text, text
        assert Decimal(listed[source.run_id]["cost_usd"]) > 0
        assert browser.find_all(f'tr.run[data-dag-id="ui_compiled_plan"][data-run-id="{source.compiled_run_id}"]')
        list_shot = browser.screenshot("run_list")
        browser.click(f"{row} a.run-link")
        browser.wait_for("#steps")
        assert browser.current_url.endswith(f"{PREFIX}/runs/{run_path(source.dag_id, source.run_id)}")
        rows = browser.find_all("#steps [data-step]")
        states = {row.get_attribute("data-step"): row.get_attribute("data-state") for row in rows}
        assert states == dict.fromkeys(STEP_IDS, "success"), states
        assert len(rows) == len(STEP_IDS)
        total = browser.wait_for("#cost-total").text
        assert Decimal(total.lstrip("$")) == Decimal(source.report["cost_usd"]), total
        graph = browser.wait_for("#plan-graph svg")
        nodes = {node.get_attribute("data-step-id") for node in browser.find_all("#plan-graph svg g.node")}
        assert nodes == set(STEP_IDS), graph.get_attribute("outerHTML")[:2000]
        assert browser.find_all("#replay-button")
        run_shot = browser.screenshot("run_page")
    for shot in (list_shot, run_shot):
        assert is_png(shot, min_bytes=10_000), f"{shot} is not a real screenshot ({shot.stat().st_size} bytes)"


def test_airflow_links_every_step_and_the_report_to_the_run_page(airflow: AirflowInstance, source: Source) -> None:
    plugins = airflow.get("/plugins")["plugins"]
    ours = [p for p in plugins if any(app["url_prefix"] == PREFIX for app in p["fastapi_apps"])]
    assert len(ours) == 1, [p["name"] for p in plugins]
    views = ours[0]["external_views"]
    assert {v.get("destination") for v in views} >= {"nav", "dag", "dag_run"}, views
    assert all(PREFIX in v["href"] for v in views), views
    page = f"{airflow.base_url}{PREFIX}/runs/{source.dag_id}/"
    base = f"/dags/{seg(source.dag_id)}/dagRuns/{seg(source.run_id)}/taskInstances"
    for index, _step in enumerate(source.plan["steps"]):
        links = airflow.get(f"{base}/{seg('attempt_1.steps')}/links", params={"map_index": index})["extra_links"]
        assert "Claude run" in links, links
        assert links["Claude run"].startswith(page), links
        assert source.run_id in links["Claude run"] or quote(source.run_id, safe="") in links["Claude run"]
    report_links = airflow.get(f"{base}/report/links")["extra_links"]
    assert report_links.get("Claude run") == links["Claude run"], report_links
    compiled = f"/dags/{seg('ui_compiled_plan')}/dagRuns/{seg(source.compiled_run_id)}/taskInstances"
    for step in ("count", "summarize"):
        link = airflow.get(f"{compiled}/{step}/links")["extra_links"].get("Claude run")
        assert link == f"{airflow.base_url}{PREFIX}/runs/ui_compiled_plan/{quote(source.compiled_run_id, safe='')}"


def test_airflow_ui_shows_the_run_page_as_a_dag_run_tab(
    airflow: AirflowInstance, source: Source, tokens: dict[str, str]
) -> None:
    """Airflow's own React UI: the DAG run page has our external view as a tab, which frames our run page."""
    with Browser() as browser:
        browser.open(f"{airflow.base_url}/dags/{seg(source.dag_id)}/runs/{seg(source.run_id)}", token=tokens["admin"])
        browser.wait_for_text("Claude run", timeout=60).click()
        frame = browser.wait_for("iframe")
        assert browser.current_url.endswith("/plugin/airflow-claude-run"), browser.current_url
        assert frame.get_attribute("src") == f"{airflow.base_url}{PREFIX}/runs/{run_path(source.dag_id, source.run_id)}"
        browser.enter_frame("iframe")
        browser.wait_for("#steps")
        rows = browser.find_all("#steps [data-step]")
        assert [row.get_attribute("data-step") for row in rows] == STEP_IDS
        browser.leave_frame()
        shot = browser.screenshot("airflow_dag_run_tab")
    assert is_png(shot, min_bytes=10_000)


def test_replay_from_the_run_page_makes_no_model_call(
    airflow: AirflowInstance, source: Source, replays: Replays, fake: FakeClaude
) -> None:
    state, report = finish(airflow, "ui_orders", replays.button)
    assert state == "success", (report["verdict"], report["reason"])
    assert is_png(replays.button_page)
    assert_exact_replay(airflow, source, replays.button, report)
    assert len(fake.message_requests()) == replays.model_requests


def test_replay_with_the_cli_makes_no_model_call(
    airflow: AirflowInstance, source: Source, replays: Replays, fake: FakeClaude
) -> None:
    assert replays.cli in replays.cli_output, replays.cli_output
    state, report = finish(airflow, "ui_orders", replays.cli)
    assert state == "success", (report["verdict"], report["reason"])
    assert_exact_replay(airflow, source, replays.cli, report)
    assert len(fake.message_requests()) == replays.model_requests


def assert_exact_replay(airflow: AirflowInstance, source: Source, run_id: str, report: dict[str, Any]) -> None:
    """The replay ran the source's plan (same hash, same steps, all succeeded) and asked no model."""
    assert report["verdict"] == "done" and report["status"] == "succeeded", report["reason"]
    assert report["model_calls"] == [] and Decimal(report["cost_usd"]) == 0
    assert report["rounds"][0]["plan_hash"] == source.plan_hash
    assert report["replay_of"]["plan_hash"] == source.plan_hash
    assert report["replay_of"]["source"] == {"dag_id": source.dag_id, "run_id": source.run_id}
    assert report["replay_of"]["requested_by"] == "admin"
    assert step_states(airflow, "ui_orders", run_id) == dict.fromkeys(STEP_IDS, "success")
    conf = airflow.get(f"/dags/{seg('ui_orders')}/dagRuns/{seg(run_id)}")["conf"]
    assert {k: conf.get(k) for k in SOURCE_CONF} == SOURCE_CONF, conf
    proposal = airflow.xcom("ui_orders", run_id, "attempt_1.plan")
    assert proposal["plan_hash"] == source.plan_hash and proposal["model"] == ""
    assert (proposal["plan"]["id"], proposal["plan"]["steps"]) == (source.plan["id"], source.plan["steps"])
    detail = plugin(airflow, "GET", f"{PREFIX}/api/runs/{run_path('ui_orders', run_id)}", airflow.token()).json()
    assert detail["plan_hash"] == source.plan_hash and detail["model_calls"] == 0
    assert detail["replay_of"]["plan_hash"] == source.plan_hash


def test_replay_into_a_changed_catalog_is_refused_before_anything_runs(
    airflow: AirflowInstance, source: Source, replays: Replays, fake: FakeClaude
) -> None:
    state, report = finish(airflow, "ui_orders_changed", replays.changed)
    assert state == "failed"
    assert report["verdict"] == "replay_refused", (report["verdict"], report["reason"])
    expected = validate_plan(source.plan, load_tools().changed_catalog)
    assert not expected.ok
    codes = {str(issue.code) for issue in expected.issues}
    for code in codes:
        assert code in report["reason"], (code, report["reason"])
    assert "summarize" in report["reason"]
    outcome = airflow.xcom("ui_orders_changed", replays.changed, "attempt_1.plan", key="outcome")
    assert outcome["verdict"] == "replay_refused"
    assert not any(state == "success" for state in step_states(airflow, "ui_orders_changed", replays.changed).values())
    assert report["model_calls"] == []
    assert len(fake.message_requests()) == replays.model_requests


def test_replay_of_a_compiled_run_keeps_its_plan_and_data_interval(
    airflow: AirflowInstance, source: Source, replays: Replays, tokens: dict[str, str], fake: FakeClaude
) -> None:
    """The compiled plan's DAG runs again: same plan hash in every step's provenance, the source's interval."""
    assert airflow.wait_for_run("ui_compiled_plan", replays.compiled, timeout=RUN_TIMEOUT) == "success"
    runs = {r["dag_run_id"]: r for r in airflow.get(f"/dags/{seg('ui_compiled_plan')}/dagRuns")["dag_runs"]}
    before, after = runs[source.compiled_run_id], runs[replays.compiled]
    assert before["data_interval_start"] is not None
    interval = ("data_interval_start", "data_interval_end")
    assert [after[k] for k in interval] == [before[k] for k in interval], (before, after)
    request = after["conf"]["airflow_claude_replay"]
    assert request["source"] == {"dag_id": "ui_compiled_plan", "run_id": source.compiled_run_id}
    stamps = {
        step: airflow.xcom("ui_compiled_plan", run, step, key="airflow_claude_provenance")
        for run in (source.compiled_run_id, replays.compiled)
        for step in ("count", "summarize")
    }
    assert {s["plan_hash"] for s in stamps.values()} == {request["plan_hash"]}, stamps
    path = f"{PREFIX}/api/runs/{run_path('ui_compiled_plan', replays.compiled)}"
    detail = plugin(airflow, "GET", path, tokens["admin"]).json()
    assert detail["replay_of"]["source"]["run_id"] == source.compiled_run_id and detail["model_calls"] == 0
    shown = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in detail["data_interval"]]
    assert shown == [datetime.fromisoformat(before[k].replace("Z", "+00:00")) for k in interval], detail
    assert len(fake.message_requests()) == replays.model_requests
    # a plan the DAG does not run (the same plan, edited) is refused: the DAG is its plan
    plan = json.loads((DAGS / "ui_plan_files" / "ui_compiled_plan.json").read_text())
    plan["steps"][0]["args"]["source"] = "orders_archive"
    edited = Plan.model_validate(plan).hash
    body = {"source": None, "plan_hash": edited, "plan": plan, "target_dag_id": "ui_compiled_plan"}
    refused = plugin(airflow, "POST", f"{PREFIX}/api/replay", tokens["admin"], json=body)
    assert refused.status_code == 409, refused.text
    assert request["plan_hash"] in refused.json()["detail"] and "--plans-dir" in refused.json()["detail"]
    assert run_ids(airflow, "ui_compiled_plan") == {source.compiled_run_id, replays.compiled}


def test_export_reproduces_the_run_offline(airflow: AirflowInstance, source: Source, tokens: dict[str, str]) -> None:
    resp = plugin(airflow, "GET", f"{PREFIX}/api/runs/{run_path(source.dag_id, source.run_id)}/export", tokens["admin"])
    assert resp.status_code == 200, resp.text
    assert "attachment" in resp.headers.get("content-disposition", "")
    bundle = resp.json()
    assert bundle["format"] == "airflow-claude-export/1"
    assert bundle["source"] == {"dag_id": source.dag_id, "run_id": source.run_id}
    assert bundle["plan_hash"] == source.plan_hash == Plan.model_validate(bundle["plan"]).hash
    assert bundle["report"]["run_id"] == source.run_id and bundle["report"]["verdict"] == "done"
    rules = load_rules(bundle["cassette"])
    assert len(rules) == 2, rules
    # the cassette answers the run's planning call with the stored plan's steps, then its review
    with FakeClaude(rules) as offline:
        client = offline.client()
        plan = client.messages.create(
            model=MODEL,
            max_tokens=1024,
            messages=[{"role": "user", "content": GOAL}],
            tools=[{"name": "submit_plan", "input_schema": {"type": "object"}}],
            tool_choice={"type": "tool", "name": "submit_plan"},
        )
        review = client.messages.create(
            model=MODEL,
            max_tokens=1024,
            messages=[{"role": "user", "content": "review"}],
            tools=[{"name": "submit_review", "input_schema": {"type": "object"}}],
            tool_choice={"type": "tool", "name": "submit_review"},
        )
    planned = next(block for block in plan.content if block.type == "tool_use")
    assert [s["id"] for s in planned.input["steps"]] == STEP_IDS
    reviewed = next(block for block in review.content if block.type == "tool_use")
    assert reviewed.input["verdict"] == "done"


def test_a_compiled_run_shows_what_changed_since_the_dags_previous_plan(
    airflow: AirflowInstance, replays: Replays, tokens: dict[str, str]
) -> None:
    """A changed plan file is a new DAG version; the next run's page names each change against the old plan."""
    assert airflow.wait_for_run("ui_compiled_plan", replays.compiled, timeout=RUN_TIMEOUT) == "success"
    dags = Path(airflow.dags_folder)
    plan_file = dags / "ui_plan_files" / "ui_compiled_plan.json"
    plan = json.loads(plan_file.read_text())
    old_hash = Plan.model_validate(plan).hash
    plan["steps"][0]["args"]["source"] = "orders_archive"
    new_hash = Plan.model_validate(plan).hash
    plan_file.write_text(json.dumps(plan, indent=2))
    airflow.force_reparse(dags / "ui_plans.py")
    deadline = time.monotonic() + 120
    while new_hash not in (airflow.get(f"/dags/{seg('ui_compiled_plan')}/details").get("doc_md") or ""):
        assert time.monotonic() < deadline, "the changed plan file never became a new DAG version"
        time.sleep(1.0)
    run_id = airflow.trigger("ui_compiled_plan")
    assert airflow.wait_for_run("ui_compiled_plan", run_id, timeout=RUN_TIMEOUT) == "success"
    path = f"{PREFIX}/api/runs/{run_path('ui_compiled_plan', run_id)}"
    detail = plugin(airflow, "GET", path, tokens["admin"]).json()
    entry = detail["version_chain"][0]
    assert detail["plan_hash"] == new_hash and entry["changed_since"] == old_hash, detail["version_chain"]
    assert entry["changes"] == ['changed step count: args.source: "orders" -> "orders_archive"']
    page = plugin(airflow, "GET", f"{PREFIX}/runs/{run_path('ui_compiled_plan', run_id)}", tokens["admin"]).text
    assert "orders_archive" in page and f"since {old_hash[:19]}" in page


def test_no_log_holds_the_secret_a_tool_logged(airflow: AirflowInstance, source: Source, replays: Replays) -> None:
    """``partner_rate`` logs its token through ``context.log``: masked at the call, so masked everywhere.

    Airflow 3.3's LocalExecutor echoes each task log line into the scheduler's stdout, past the
    masking of the task log files; the component logs are checked as well as the task logs.
    """
    for run_id in (replays.button, replays.cli):
        airflow.wait_for_run("ui_orders", run_id, timeout=RUN_TIMEOUT)
    logged = [p for p in airflow.home.rglob("*.log") if p.is_file()]
    assert any(p.parent == airflow.component_log_dir for p in logged), logged
    partner_lines = 0
    for path in logged:
        text = path.read_text(encoding="utf-8", errors="replace")
        assert SECRET not in text, f"{path} holds the partner token"
        partner_lines += text.count("partner call for emea with token ***")
    assert partner_lines >= 3, "the tool's log line (masked) was not found: the check above proved nothing"
