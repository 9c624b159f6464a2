"""The DAG factory: structure, retries, determinism, invalid plans, parsing context, no Jinja."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.definitions._internal.templater import LiteralValue
from airflow.serialization.serialized_objects import DagSerialization

from airflow_claude.catalog import Catalog, operator_tool
from airflow_claude.examples.orders import catalog as orders_catalog
from airflow_claude.factory import load_plan_dags
from airflow_claude.factory.build import INVALID_TAG
from airflow_claude.runtime.resolve import StepRefValue
from airflow_claude.runtime.step import PlanStepOperator

EXAMPLE_PLAN = Path(__file__).parents[2] / "dags" / "plans" / "nightly_orders_report.json"
TEMPLATE_PAYLOADS = ["{{ 7 * 7 }}", "{% for x in [1, 2] %}{{ x }}{% endfor %}", "{{ var.value.secret }}"]


def example_plan() -> dict[str, Any]:
    return json.loads(EXAMPLE_PLAN.read_text())


def write_plan(folder: Path, plan: dict[str, Any], name: str | None = None) -> Path:
    path = folder / f"{name or plan['id']}.json"
    path.write_text(json.dumps(plan))
    return path


def serialized(dag: Any) -> str:
    return json.dumps(DagSerialization.to_dict(dag), sort_keys=True)


def test_one_task_per_step_with_true_dependencies(tmp_path: Path) -> None:
    write_plan(tmp_path, example_plan())
    dags = load_plan_dags(tmp_path, orders_catalog)
    dag = dags["nightly_orders_report"]
    plan = example_plan()
    steps = [t for t in dag.task_ids if not t.startswith("saga.")]
    assert sorted(steps) == sorted(step["id"] for step in plan["steps"])
    for step in plan["steps"]:
        assert dag.get_task(step["id"]).upstream_task_ids == set(step.get("depends_on", []))
    assert type(dag.get_task("extract_orders")) is PlanStepOperator
    assert type(dag.get_task("refresh_daily_summary")).__name__ == "SQLExecuteQueryOperator"
    # a cron schedule spans the time between runs, so run.data_interval_* references mean something
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.timetable.expression == plan["schedule"]


def test_retries_and_timeouts_come_from_step_then_tool(tmp_path: Path) -> None:
    plan = example_plan()
    plan["steps"][0]["retries"] = 4
    plan["steps"][0]["timeout_seconds"] = 30
    write_plan(tmp_path, plan)
    dag = load_plan_dags(tmp_path, orders_catalog, retry_delay=timedelta(seconds=3))["nightly_orders_report"]
    extract = dag.get_task("extract_orders")
    assert extract.retries == 4
    assert extract.execution_timeout == timedelta(seconds=30)
    assert extract.retry_delay == timedelta(seconds=3)
    check = dag.get_task("check_orders")  # no step override: the tool's default_retries and max timeout
    assert check.retries == orders_catalog["check_quality"].default_retries
    assert check.execution_timeout == timedelta(seconds=orders_catalog["check_quality"].max_timeout_seconds)


def test_reparse_of_unchanged_plan_serializes_identically(tmp_path: Path) -> None:
    write_plan(tmp_path, example_plan())
    first = serialized(load_plan_dags(tmp_path, orders_catalog)["nightly_orders_report"])
    second = serialized(load_plan_dags(tmp_path, orders_catalog)["nightly_orders_report"])
    assert first == second
    changed = example_plan()
    changed["steps"][0]["args"]["end_date"] = "2026-10-30"
    write_plan(tmp_path, changed)
    third = serialized(load_plan_dags(tmp_path, orders_catalog)["nightly_orders_report"])
    assert third != first  # a changed plan is a new plan: new hash, new DAG version


def test_provenance_is_visible_on_dag_and_tasks(tmp_path: Path) -> None:
    write_plan(tmp_path, example_plan())
    dag = load_plan_dags(tmp_path, orders_catalog)["nightly_orders_report"]
    from airflow_claude.plan import parse_plan

    digest = parse_plan(example_plan(), orders_catalog).hash
    assert digest in (dag.doc_md or "")
    assert "human:data-team" in (dag.doc_md or "")
    task_doc = dag.get_task("write_revenue_report").doc_md or ""
    assert digest in task_doc and "tool `write_report` v1 (mutating)" in task_doc
    assert "runs after `check_orders`, `revenue_by_region`" in task_doc and '"title": ' in task_doc
    assert "airflow-claude" in dag.tags


def test_invalid_plan_is_a_visible_placeholder_and_good_plans_still_load(tmp_path: Path) -> None:
    write_plan(tmp_path, example_plan())
    broken = example_plan()
    broken["id"] = "broken_plan"
    broken["steps"][1]["tool"] = "check_qualty"
    broken["steps"][2]["depends_on"] = ["revenue_by_region"]
    write_plan(tmp_path, broken)
    (tmp_path / "not_json.json").write_text("{ this is not json")
    (tmp_path / "has spaces.json").write_text(json.dumps({**example_plan(), "id": "x"}))
    dags = load_plan_dags(tmp_path, orders_catalog)
    assert "nightly_orders_report" in dags and INVALID_TAG not in dags["nightly_orders_report"].tags
    placeholder = dags["broken_plan"]
    assert INVALID_TAG in placeholder.tags
    assert placeholder.task_ids == ["plan_invalid"]
    doc = placeholder.doc_md or ""
    assert "unknown_tool" in doc and "did you mean 'check_quality'?" in doc
    assert "self_dependency" in doc
    assert INVALID_TAG in dags["not_json"].tags and "malformed_json" in (dags["not_json"].doc_md or "")
    odd = [d for d in dags if d.startswith("invalid_has_spaces_")]
    assert len(odd) == 1 and "file_name_mismatch" in (dags[odd[0]].doc_md or "")


def test_compile_failure_in_an_operator_becomes_a_placeholder(tmp_path: Path) -> None:
    from airflow.providers.standard.operators.python import PythonOperator

    picky = operator_tool(
        PythonOperator,
        name="picky",
        description="An operator tool whose constructor rejects what the plan gives it.",
        params={"op_args": {"type": "array"}},
        fixed={"python_callable": "not callable"},
    )
    catalog = Catalog([picky], name="picky")
    plan = {
        "schema_version": "1",
        "id": "picky_plan",
        "goal": "g",
        "provenance": {"created_by": "test"},
        "steps": [{"id": "a", "tool": "picky", "args": {"op_args": [1]}}],
    }
    write_plan(tmp_path, plan)
    dags = load_plan_dags(tmp_path, catalog)
    assert INVALID_TAG in dags["picky_plan"].tags
    assert "compile_failed" in (dags["picky_plan"].doc_md or "")


def test_worker_builds_only_its_own_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for index in range(3):
        plan = example_plan()
        plan["id"] = f"plan_{index}"
        write_plan(tmp_path, plan)
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "team_plan_1")
    assert list(load_plan_dags(tmp_path, orders_catalog, dag_id_prefix="team_")) == ["team_plan_1"]
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "someone_else")
    assert len(load_plan_dags(tmp_path, orders_catalog, dag_id_prefix="team_")) == 3


@pytest.mark.parametrize("payload", TEMPLATE_PAYLOADS)
def test_operator_tool_arguments_are_never_rendered(tmp_path: Path, payload: str) -> None:
    plan = example_plan()
    plan["steps"][3]["args"]["sql"] = f"SELECT '{payload}'"
    write_plan(tmp_path, plan)
    task = load_plan_dags(tmp_path, orders_catalog)["nightly_orders_report"].get_task("refresh_daily_summary")
    assert isinstance(task.sql, LiteralValue)
    task.render_template_fields(context={"ti": None, "var": {"value": {"secret": "s3cr3t"}}})  # type: ignore[arg-type]
    assert task.sql == f"SELECT '{payload}'"


def test_python_steps_render_nothing(tmp_path: Path) -> None:
    plan = example_plan()
    plan["steps"][5]["args"]["message"] = TEMPLATE_PAYLOADS[1]
    write_plan(tmp_path, plan)
    task = load_plan_dags(tmp_path, orders_catalog)["nightly_orders_report"].get_task("notify_team")
    before = copy.deepcopy(task.step_args)
    task.render_template_fields(context={})  # type: ignore[arg-type]
    assert task.template_fields == () and task.step_args == before
    assert task.step_args["message"] == TEMPLATE_PAYLOADS[1]


def test_operator_reference_arguments_resolve_from_xcom(tmp_path: Path) -> None:
    plan = example_plan()
    plan["steps"][3]["args"]["sql"] = {"$ref": "steps.extract_orders.output.rows.0.product"}
    write_plan(tmp_path, plan)
    dags = load_plan_dags(tmp_path, orders_catalog)
    # 'rows.0.product' is a string in query_orders' output schema, so the reference is valid
    task = dags["nightly_orders_report"].get_task("refresh_daily_summary")
    assert isinstance(task.sql, StepRefValue)

    class TI:
        def xcom_pull(self, task_ids: str, key: str, default: Any = None) -> Any:
            assert (task_ids, key) == ("extract_orders", "return_value")
            return {"rows": [{"product": "SELECT 1 -- {{ 7 * 7 }}"}], "count": 1}

    task.render_template_fields(context={"ti": TI()})  # type: ignore[arg-type]
    assert task.sql == "SELECT 1 -- {{ 7 * 7 }}"


def test_compensable_steps_get_undo_tasks_in_reverse_order_and_an_outcome(tmp_path: Path) -> None:
    write_plan(tmp_path, example_plan())
    dag = load_plan_dags(tmp_path, orders_catalog)["nightly_orders_report"]
    undo_report, undo_notify = dag.get_task("saga.undo_write_revenue_report"), dag.get_task("saga.undo_notify_team")
    assert undo_report.trigger_rule == "all_done" and undo_notify.trigger_rule == "all_done"
    assert "saga.undo_notify_team" in undo_report.upstream_task_ids  # notify ran after the report: undone first
    steps_done = dag.get_task("saga.steps_done")  # one join after every step keeps edges linear
    assert steps_done.trigger_rule == "all_done" and "saga.steps_done" in undo_notify.upstream_task_ids
    assert {"write_revenue_report", "notify_team", "extract_orders"} <= steps_done.upstream_task_ids
    outcome = dag.get_task("saga.outcome")
    assert {"saga.undo_write_revenue_report", "saga.undo_notify_team"} <= outcome.upstream_task_ids
    assert not any(t.task_id.startswith("saga.undo_") and "extract" in t.task_id for t in dag.tasks)  # read-only
    without = load_plan_dags(tmp_path, orders_catalog, compensate=False)["nightly_orders_report"]
    assert not [t for t in without.task_ids if t.startswith("saga.")]


def test_compensation_arguments_come_from_the_step_arguments_and_output() -> None:
    from airflow_claude.runtime.compensate import compensation_args

    comp = orders_catalog["notify"].compensation
    assert comp is not None
    derived = compensation_args(comp, "notify_team", {"channel": "#data", "message": "m"}, {"id": "ik_1"})
    assert derived == {"channel": "#data", "notification_id": "ik_1"}


def test_a_tool_pool_bounds_its_steps(tmp_path: Path) -> None:
    from dataclasses import replace

    pooled = Catalog([replace(t, pool="warehouse") if n == "run_sql" else t for n, t in orders_catalog.items()])
    write_plan(tmp_path, example_plan())
    dag = load_plan_dags(tmp_path, pooled)["nightly_orders_report"]
    assert dag.get_task("refresh_daily_summary").pool == "warehouse"
    assert dag.get_task("extract_orders").pool == "default_pool"


def test_undo_tasks_take_the_compensating_tools_retries_timeout_and_pool(tmp_path: Path) -> None:
    from dataclasses import replace

    tools = {n: t for n, t in orders_catalog.items()}
    tools["delete_report"] = replace(tools["delete_report"], max_timeout_seconds=45.0, pool="files")
    write_plan(tmp_path, example_plan())
    dag = load_plan_dags(tmp_path, Catalog(list(tools.values()), name="orders"))["nightly_orders_report"]
    undo = dag.get_task("saga.undo_write_revenue_report")
    assert undo.retries == tools["delete_report"].default_retries > 0
    assert undo.execution_timeout == timedelta(seconds=45) and undo.pool == "files"


def test_every_step_task_links_to_the_run_page(tmp_path: Path) -> None:
    """Python and operator-backed steps alike serialize the ``Claude run`` extra link."""
    write_plan(tmp_path, example_plan())
    dag = load_plan_dags(tmp_path, orders_catalog)["nightly_orders_report"]
    tasks = DagSerialization.to_dict(dag)["dag"]["tasks"]
    links = {t["__var"]["task_id"]: t["__var"].get("_operator_extra_links", {}) for t in tasks}
    steps = [step["id"] for step in example_plan()["steps"]]
    assert any(not isinstance(dag.get_task(s), PlanStepOperator) for s in steps)  # an operator step is covered
    for step in steps:
        assert "Claude run" in links[step], (step, links[step])


def test_an_operator_step_of_a_compiled_replay_checks_the_plan_hash(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from airflow_claude.runtime.replay import ReplayRefused, ReplayRequest

    write_plan(tmp_path, example_plan())
    task = load_plan_dags(tmp_path, orders_catalog)["nightly_orders_report"].get_task("refresh_daily_summary")
    ti = SimpleNamespace(dag_id="d", run_id="r", task_id=task.task_id, try_number=1, task=task)
    conf = ReplayRequest(plan_hash="sha256:" + "0" * 64).conf()
    with pytest.raises(ReplayRefused, match="plan_hash_mismatch"):
        task._pre_execute_hook({"ti": ti, "dag_run": SimpleNamespace(conf=conf)})  # as the task runner calls it
