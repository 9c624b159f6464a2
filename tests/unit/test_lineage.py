"""OpenLineage: the custom run facet, the tools' datasets, masking, and Assets on compiled step tasks.

The operators' ``get_openlineage_facets_on_*`` methods are called here as the OpenLineage
provider's listener calls them (after ``execute``, with the task instance).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import Asset, AssetAlias
from automation_kit import CATALOG, FakeTI, context

from airflow_claude.automation import AutomationSettings, claude_automation
from airflow_claude.automation.contracts import COMMITTED_KEY, DECISION_KEY, GOAL_KEY, CommittedPlan, Decision, Proposal
from airflow_claude.automation.steps import RunPlanStepOperator, steps_alias
from airflow_claude.catalog import Catalog, ToolContext, operator_tool, python_tool
from airflow_claude.errors import CatalogError
from airflow_claude.factory.build import DEFAULT_START_DATE as START
from airflow_claude.factory.build import _Options, compile_plan
from airflow_claude.observability import lineage
from airflow_claude.observability.redaction import register_secret
from airflow_claude.plan.limits import DEFAULT_LIMITS
from airflow_claude.plan.model import Plan
from airflow_claude.runtime.provenance import PROVENANCE_XCOM_KEY, idempotency_key

REPO = Path(__file__).resolve().parents[2]
ORDERS = Asset("file:///data/orders.csv")
REPORT = Asset(name="revenue_report", uri="file:///data/reports/revenue.md")
TABLE = Asset("postgres://warehouse:5432/shop/public/daily_revenue")
SECRET = "lin3age-s3cret-9f2c1e"


@python_tool(side_effects="mutating", inlets=[ORDERS], outlets=[TABLE, REPORT])
def publish(rows: int, note: str, context: ToolContext) -> dict[str, Any]:
    """Publish a report from the orders file."""
    return {"rows": rows, "key": context.idempotency_key}


@python_tool
def plain(rows: int) -> dict[str, int]:
    """A tool that declares no datasets."""
    return {"rows": rows}


TOOLS = Catalog([publish, plain], name="lineage")
OPTIONS = _Options(TOOLS, "", DEFAULT_LIMITS, __import__("datetime").timedelta(seconds=1), START, (), {})


def plan(*steps: dict[str, Any]) -> Plan:
    return Plan.model_validate(
        {
            "schema_version": "1",
            "id": "lineage_plan",
            "goal": "Publish.",
            "steps": list(steps),
            "provenance": {"created_by": "human:test"},
        }
    )


class StepTI:
    """What a compiled step uses of a RuntimeTaskInstance; XCom by (task id, key)."""

    def __init__(self, task_id: str, try_number: int = 1) -> None:
        self.dag_id, self.run_id, self.task_id, self.try_number, self.map_index = (
            "lineage_plan",
            "r1",
            task_id,
            try_number,
            -1,
        )
        self.xcom: dict[tuple[str, str], Any] = {}
        self.task: Any = None

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[(self.task_id, key)] = value

    def xcom_pull(self, task_ids: str, key: str = "return_value", default: Any = None, **_: Any) -> Any:
        return self.xcom.get((task_ids, key), default)


def facet_json(result: Any) -> dict[str, Any]:
    from openlineage.client.serde import Serde  # lazy: the no-openlineage test imports this module

    facet = result.run_facets[lineage.FACET_NAME]
    return json.loads(Serde.to_json(facet))


def validate(facet: dict[str, Any]) -> None:
    schema = lineage.facet_schema()
    jsonschema.Draft202012Validator(
        {**schema, "$ref": "#/$defs/AirflowClaudeRunFacet"}, format_checker=jsonschema.FormatChecker()
    ).validate(facet)


@pytest.fixture
def lineage_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lineage, "lineage_active", lambda: True)


def run_compiled(step_id: str, tool: str, args: dict[str, Any], try_number: int = 1) -> tuple[Any, StepTI, Plan]:
    p = plan({"id": step_id, "tool": tool, "args": args})
    dag = compile_plan(p, OPTIONS, source="lineage_plan.json")
    task = dag.get_task(step_id)
    ti = StepTI(step_id, try_number)
    ti.task = task
    task.execute({"ti": ti, "task_state_store": None})
    return task, ti, p


def test_a_step_facet_names_plan_step_tool_and_key_and_validates_against_the_shipped_schema(lineage_on: None) -> None:
    task, ti, p = run_compiled("publish_it", "publish", {"rows": 3, "note": "n"}, try_number=2)
    result = task.get_openlineage_facets_on_complete(ti)
    facet = facet_json(result)
    validate(facet)
    assert facet["_schemaURL"] == lineage.SCHEMA_URL
    assert facet["_schemaURL"].endswith(
        "/airflow_claude/observability/lineage_facet.schema.json#/$defs/AirflowClaudeRunFacet"
    )
    assert facet["_producer"].startswith("https://github.com/airflow-claude/airflow-claude")
    key = idempotency_key("lineage_plan", "r1", "publish_it", {"rows": 3, "note": "n"})
    assert ti.xcom[("publish_it", PROVENANCE_XCOM_KEY)]["idempotency_key"] == key
    assert {k: facet[k] for k in facet if not k.startswith("_")} == {
        "kind": "plan_step",
        "planId": "lineage_plan",
        "planHash": p.hash,
        "stepId": "publish_it",
        "tool": "publish",
        "toolVersion": "1",
        "catalogFingerprint": TOOLS.fingerprint,
        "idempotencyKey": key,
        "argsFingerprint": ti.xcom[("publish_it", PROVENANCE_XCOM_KEY)]["args_fingerprint"],
        "tryNumber": 2,
    }
    # the shipped schema file is the one in the package data
    assert lineage.SCHEMA_PATH.parent == REPO / "airflow_claude" / "observability"
    assert "observability/lineage_facet.schema.json" in (REPO / "pyproject.toml").read_text()


def test_the_datasets_are_the_tools_inlets_and_outlets(lineage_on: None) -> None:
    task, ti, _ = run_compiled("publish_it", "publish", {"rows": 1, "note": "n"})
    result = task.get_openlineage_facets_on_complete(ti)
    assert [(d.namespace, d.name) for d in result.inputs] == [("file", "/data/orders.csv")]
    outputs = [(d.namespace, d.name) for d in result.outputs]
    assert len(outputs) == 2 and ("file", "/data/reports/revenue.md") in outputs
    assert any(ns.startswith("postgres://warehouse:5432") for ns, _ in outputs)
    # a failed step still names its step and tool (no idempotency key: the tool was never called)
    failed = facet_json(task.get_openlineage_facets_on_failure(StepTI("publish_it", 3)))
    validate(failed)
    # the stash from the successful try is on this operator; a fresh one falls back to the identity
    fresh = compile_plan(
        plan({"id": "publish_it", "tool": "publish", "args": {"rows": 1, "note": "n"}}), OPTIONS, source="x"
    )
    start = facet_json(fresh.get_task("publish_it").get_openlineage_facets_on_start())
    assert start["stepId"] == "publish_it" and "idempotencyKey" not in start and "tryNumber" not in start
    assert failed["tool"] == "publish"


def test_a_registered_secret_never_reaches_the_facet(lineage_on: None) -> None:
    register_secret(SECRET)
    task, ti, _ = run_compiled("publish_it", "publish", {"rows": 1, "note": f"token {SECRET}"})
    result = task.get_openlineage_facets_on_complete(ti)
    text = json.dumps(facet_json(result))
    assert SECRET not in text and "argsFingerprint" in text  # arguments only ever by fingerprint
    # anything that does land in a facet is masked structurally, before it is encoded
    masked = facet_json(lineage.operator_lineage({"kind": "plan_step", "planId": f"p {SECRET}", "usage": {"calls": 1}}))
    assert masked["planId"] == "p ***"
    assert masked["usage"] == {"calls": 1}


def test_a_tool_without_datasets_keeps_its_contract_and_the_catalog_its_fingerprint() -> None:
    def publish_report(name: str, rows: int = 0) -> dict:  # type: ignore[type-arg]
        """Publish a report."""
        return {}

    publish_report.__module__, publish_report.__qualname__, publish_report.__name__ = "lineage_fp", "publish", "publish"
    tool = python_tool(side_effects="mutating")(publish_report)
    noop = operator_tool(EmptyOperator, name="noop", description="Do nothing.", params={})
    assert "inlets" not in tool.contract() and "outlets" not in noop.contract()
    # computed with the code before tools could declare datasets: stored plans record this fingerprint
    assert Catalog([tool, noop], name="fp").fingerprint == (
        "sha256:344ae341c98bf52b590b419f2bf8c5844991c5cef87007f9068978b5544f27a6"
    )
    declared = publish.contract()
    assert declared["inlets"] == ["file:///data/orders.csv"]
    assert declared["outlets"] == [
        "file:///data/reports/revenue.md",
        "postgres://warehouse:5432/shop/public/daily_revenue",
    ]
    with pytest.raises(CatalogError, match=r"must be airflow\.sdk\.Asset"):
        python_tool(outlets=["s3://bucket/key"])(publish_report)


def test_compiled_step_tasks_carry_the_tools_assets_and_serialize_them() -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    p = plan(
        {"id": "publish_it", "tool": "publish", "args": {"rows": 1, "note": "n"}},
        {"id": "count", "tool": "plain", "args": {"rows": 1}},
    )
    dag = compile_plan(p, OPTIONS, source="lineage_plan.json")
    task = dag.get_task("publish_it")
    assert task.outlets == [REPORT, TABLE]  # sorted by URI: the serialized DAG does not depend on declaration order
    assert task.inlets == [ORDERS]
    assert dag.get_task("count").outlets == [] and dag.get_task("count").inlets == []
    again = compile_plan(p, OPTIONS, source="lineage_plan.json")
    first, second = (json.dumps(DagSerialization.to_dict(d), sort_keys=True, default=str) for d in (dag, again))
    assert first == second and "revenue_report" in first


def test_operator_tool_steps_get_the_facet_beside_their_own_lineage(lineage_on: None) -> None:
    asset = Asset("file:///data/touched.txt")
    noop = operator_tool(EmptyOperator, name="noop", description="Do nothing.", params={}, outlets=asset)
    catalog = Catalog([noop], name="ops")
    options = _Options(catalog, "", DEFAULT_LIMITS, OPTIONS.retry_delay, START, (), {})
    dag = compile_plan(plan({"id": "touch", "tool": "noop", "args": {}}), options, source="x")
    task = dag.get_task("touch")
    assert task.outlets == [asset]
    ti = StepTI("touch")
    ti.task = task
    task._pre_execute_hook({"ti": ti})  # what Airflow calls around the operator's execute
    task._post_execute_hook({"ti": ti}, None)
    facet = facet_json(task.get_openlineage_facets_on_complete(ti))
    validate(facet)
    assert facet["stepId"] == "touch" and facet["tool"] == "noop" and facet["idempotencyKey"].startswith("ik_")
    assert [(d.namespace, d.name) for d in task.get_openlineage_facets_on_complete(ti).outputs] == [
        ("file", "/data/touched.txt")
    ]


# ------------------------------------------------------------------ run-time plans and model calls

SETTINGS = AutomationSettings(max_steps=6, max_replans=0, require_approval=False, review="always")
# the kit's tools plus one that writes Assets: the automation's steps get the alias as their outlet
LINEAGE_CATALOG = Catalog([*CATALOG.values(), publish], name="kit_lineage")
LINEAGE_DAG = claude_automation("lineage_kit", catalog=LINEAGE_CATALOG, settings=SETTINGS)
KIT_DAG = claude_automation("lineage_kit_plain", catalog=CATALOG, settings=SETTINGS)
KEY = "sk-ant-lineage-51d2e0"
STEPS = [{"id": "first", "tool": "write", "args": {"name": "alpha"}, "depends_on": []}]


@pytest.fixture
def claude(fake_claude: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    conn = {"conn_type": "anthropic", "host": fake_claude.url, "password": KEY, "extra": {"model": "claude-kit"}}
    monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", json.dumps(conn))
    return fake_claude


def test_the_plan_task_facet_carries_the_model_and_its_usage(claude: Any) -> None:
    claude.reply_tool_use("submit_plan", {"steps": STEPS})
    ti = FakeTI(dag_id="lineage_kit")
    task = LINEAGE_DAG.get_task("attempt_1.plan")
    proposal = Proposal.model_validate(task.execute(context(ti.at("attempt_1.plan"), goal=f"Write alpha. {KEY}")))
    facet = facet_json(task.get_openlineage_facets_on_complete(ti))
    validate(facet)
    usage = ti.xcom[("attempt_1.plan", None, "usage")]
    assert facet["kind"] == "plan" and facet["model"] == "claude-kit"
    assert facet["planId"] == proposal.plan["id"] and facet["planHash"] == proposal.plan_hash
    assert facet["automationId"] == "lineage_kit" and facet["round"] == 1 and facet["tryNumber"] == 1
    assert facet["usage"] == {
        "calls": 1,
        "input": usage["input_tokens"],
        "output": usage["output_tokens"],
        "cacheCreationInput": usage["cache_creation_input_tokens"],
        "cacheReadInput": usage["cache_read_input_tokens"],
        "costUsd": usage["cost_usd"],
    }
    assert facet["usage"]["input"] > 0
    text = json.dumps(facet)
    assert KEY not in text and "Write alpha" not in text  # no prompt text, no key


def test_the_review_facet_carries_the_model_and_its_usage_and_a_run_time_step_its_own(
    claude: Any, lineage_on: None
) -> None:
    claude.reply_tool_use("submit_review", {"verdict": "done", "reason": "ok"})
    ti = FakeTI(dag_id="lineage_kit")
    doc = {
        "schema_version": "1",
        "id": "kit_plan",
        "goal": "Write.",
        "steps": STEPS,
        "provenance": {"created_by": "human:test"},
    }
    p = Plan.model_validate(doc)
    ti.xcom[("attempt_1.plan", None, "return_value")] = Proposal(
        plan=p.model_dump(mode="json"), plan_hash=p.hash, goal=p.goal, model="m"
    ).dump()
    ti.xcom[("attempt_1.plan", None, GOAL_KEY)] = p.goal
    ti.xcom[("attempt_1.approve", None, DECISION_KEY)] = Decision(chosen_options=["Approve"], auto=True).dump()
    tickets = LINEAGE_DAG.get_task("attempt_1.commit").execute(context(ti.at("attempt_1.commit")))
    committed = CommittedPlan.model_validate(ti.xcom[("attempt_1.commit", None, COMMITTED_KEY)])

    # the mapped steps task: a tool of the catalog writes an Asset, so its outlet is the automation's alias
    outlets = LINEAGE_DAG.get_task("attempt_1.steps").outlets
    assert outlets == [steps_alias("lineage_kit")] and isinstance(outlets[0], AssetAlias)
    assert KIT_DAG.get_task("attempt_1.steps").outlets == []  # no tool writes an Asset: no alias
    step_task = RunPlanStepOperator(
        task_id="attempt_1.steps", automation_id="lineage_kit", round_number=1, ticket=tickets[0], outlets=outlets
    )
    ti.xcom[("attempt_1.commit", None, "return_value")] = tickets
    step_task.execute({**context(ti.at("attempt_1.steps", 0)), "outlet_events": None})
    facet = facet_json(step_task.get_openlineage_facets_on_complete(ti))
    assert facet["kind"] == "plan_step" and facet["stepId"] == "first" and facet["tool"] == "write"
    assert facet["automationId"] == "lineage_kit" and facet["round"] == 1 and facet["idempotencyKey"].startswith("ik_")
    assert facet["planId"] == "kit_plan" and facet["planHash"] == committed.plan_hash

    review = LINEAGE_DAG.get_task("attempt_1.review")
    review.execute(context(ti.at("attempt_1.review")))
    facet = facet_json(review.get_openlineage_facets_on_complete(ti))
    validate(facet)
    assert facet["kind"] == "review" and facet["model"] == "claude-kit" and facet["usage"]["calls"] == 1
    assert facet["planId"] == "kit_plan" and facet["planHash"] == committed.plan_hash


def test_a_step_adds_its_tools_output_assets_to_the_alias() -> None:
    from airflow.sdk.execution_time.context import OutletEventAccessors

    report = Asset("file:///data/kit/report.md")

    def reporter(name: str) -> dict[str, str]:
        """Write a report."""
        return {"name": name}

    tool = python_tool(outlets=[report])(reporter)
    events = OutletEventAccessors()

    class Step(RunPlanStepOperator):
        pass

    task = Step(task_id="attempt_1.steps", automation_id="lineage_kit", round_number=1, ticket={"step": {}})
    task._lineage_after({"ti": FakeTI(), "outlet_events": events}, tool, type("T", (), {"step": {"id": "s1"}})())
    added = events[steps_alias("lineage_kit")].asset_alias_events
    assert [(e.dest_asset_key.uri, e.extra) for e in added] == [(report.uri, {"step_id": "s1", "tool": "reporter"})]


def test_the_package_imports_and_runs_a_step_without_openlineage_installed(tmp_path: Path) -> None:
    """A blocker on ``openlineage`` and the provider: the package imports, compiles and runs a step."""
    code = f"""
import sys
# as if the extra were not installed: no module, no distribution (so no provider entry point)
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "openlineage" or name.startswith(("openlineage.", "airflow.providers.openlineage")):
            raise ModuleNotFoundError("blocked: " + name)
sys.meta_path.insert(0, Block())
import importlib.metadata, importlib_metadata
for _md in (importlib.metadata, importlib_metadata):
    def _without_openlineage(_all=_md.distributions, **kwargs):
        return (d for d in _all(**kwargs) if "openlineage" not in (d.metadata["Name"] or "").lower())
    _md.distributions = _without_openlineage
sys.path.insert(0, {str(Path(__file__).parent)!r})
import airflow_claude, airflow_claude.operators
from airflow_claude.observability import lineage
assert not lineage.lineage_active()
import test_lineage as t
task, ti, _ = t.run_compiled("publish_it", "publish", {{"rows": 2, "note": "n"}})
assert ti.xcom[("publish_it", "airflow_claude_provenance")]["tool"] == "publish"
assert task.outlets and lineage.STASH_ATTR not in vars(task)
assert not any(m.startswith("openlineage") for m in sys.modules), [m for m in sys.modules if "openlineage" in m]
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
