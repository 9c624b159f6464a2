"""Plans bound to their run: run values, params, their resolution for both kinds of tools, the
planner told which run it plans for, and the review policy. Validation codes live in test_validator.py."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from shop import CATALOG, build_plan, build_step

from airflow_claude.catalog import Catalog, ToolContext, python_tool
from airflow_claude.errors import Code, StepError
from airflow_claude.examples.orders import catalog as orders_catalog
from airflow_claude.factory import load_plan_dags
from airflow_claude.plan import validate_plan
from airflow_claude.plan.params import param_values
from airflow_claude.plan.run_fields import RUN_FIELDS, run_values
from airflow_claude.planner import DEFAULT_MODEL, ClaudePlanner, ModelGateway, PlanCache
from airflow_claude.planner.planner import literal_run_values
from airflow_claude.runtime.provenance import PROVENANCE_XCOM_KEY, StepIdentity
from airflow_claude.runtime.resolve import RunScope, StepRefValue, resolve_with
from airflow_claude.runtime.step import PlanStepOperator
from airflow_claude.testing import FakeClaude

REPO = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 11, 2, tzinfo=UTC)
SEEN: list[dict[str, Any]] = []


@python_tool
def window(start: str, end: str, region: str, context: ToolContext) -> dict[str, str]:
    """Record the window and region a run asked for."""
    SEEN.append({"start": start, "end": end, "region": region, "run_id": context.run_id})
    return {"start": start, "end": end, "region": region}


tools = Catalog([window], name="window")


class FakeTI:
    def __init__(self) -> None:
        self.dag_id, self.run_id, self.task_id, self.try_number = "d", "scheduled__2026-11-02", "s", 1
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str, key: str = "return_value", default: Any = None) -> Any:
        return default

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def context(*, interval: bool = True, params: dict[str, Any] | None = None) -> dict[str, Any]:
    ti = FakeTI()
    ctx: dict[str, Any] = {
        "ti": ti,
        "run_id": ti.run_id,
        "dag_run": SimpleNamespace(run_id=ti.run_id, run_type=SimpleNamespace(value="scheduled")),
        "params": params or {},
    }
    if interval:
        ctx.update(logical_date=START, data_interval_start=START, data_interval_end=END)
    return ctx


def submitted(params: Any, conf: dict[str, Any]) -> dict[str, Any]:
    """What Airflow does with a trigger's conf: the DAG's params updated with it, then validated."""
    form = copy.deepcopy(params)
    for name, value in conf.items():
        form[name] = value
    return dict(form.validate())


def window_step(args: dict[str, Any]) -> PlanStepOperator:
    identity = StepIdentity("p", "sha256:abc", "s", "window", "1", tools.fingerprint)
    return PlanStepOperator.for_step(task_id="s", tool=tools["window"], step_args=args, identity=identity)  # type: ignore[arg-type]


WINDOW_ARGS = {
    "start": {"$ref": "run.data_interval_start_ds"},
    "end": {"$ref": "run.data_interval_last_ds"},
    "region": {"$ref": "params.region"},
}


def test_run_values_cover_every_field_with_dates_and_timestamps() -> None:
    values = run_values(
        run_id="r", run_type="backfill", logical_date=START, data_interval_start=START, data_interval_end=END
    )
    assert set(values) == set(RUN_FIELDS)
    assert values == {
        "run_id": "r",
        "run_type": "backfill",
        "logical_date": "2026-11-01T00:00:00+00:00",
        "ds": "2026-11-01",
        "data_interval_start": "2026-11-01T00:00:00+00:00",
        "data_interval_end": "2026-11-02T00:00:00+00:00",
        "data_interval_start_ds": "2026-11-01",
        "data_interval_end_ds": "2026-11-02",
        "data_interval_last_ds": "2026-11-01",  # the inclusive end of a one-day interval is that day
    }
    month = run_values(
        run_id="r",
        run_type="scheduled",
        logical_date=START,
        data_interval_start=START,
        data_interval_end=datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert (month["data_interval_start_ds"], month["data_interval_last_ds"]) == ("2026-11-01", "2026-11-30")
    instant = run_values(
        run_id="r", run_type="manual", logical_date=END, data_interval_start=END, data_interval_end=END
    )
    assert instant["data_interval_last_ds"] == "2026-11-02"
    manual = run_values(
        run_id="r", run_type="manual", logical_date=None, data_interval_start=None, data_interval_end=None
    )
    assert manual["run_id"] == "r" and manual["data_interval_start"] is None and manual["ds"] is None


def test_python_tool_gets_the_runs_values_and_params_and_provenance_records_them() -> None:
    SEEN.clear()
    ctx = context(params={"region": "amer"})
    out = window_step(WINDOW_ARGS).execute(ctx)
    assert out == {"start": "2026-11-01", "end": "2026-11-01", "region": "amer"}
    assert SEEN == [{"start": "2026-11-01", "end": "2026-11-01", "region": "amer", "run_id": "scheduled__2026-11-02"}]
    assert ctx["ti"].pushed[PROVENANCE_XCOM_KEY]["run_values"] == {
        "params.region": "amer",
        "run.data_interval_last_ds": "2026-11-01",
        "run.data_interval_start_ds": "2026-11-01",
    }


def test_a_run_without_a_data_interval_fails_the_step_with_how_to_trigger_it() -> None:
    SEEN.clear()
    with pytest.raises(AirflowFailException, match="no logical date and no data interval") as failure:
        window_step(WINDOW_ARGS).execute(context(interval=False, params={"region": "amer"}))
    assert "logical_date" in str(failure.value) and "params" in str(failure.value)
    assert SEEN == []  # the tool never ran
    # run.run_id needs no interval
    args = {**WINDOW_ARGS, "start": {"$ref": "run.run_id"}, "end": {"$ref": "run.run_id"}}
    assert window_step(args).execute(context(interval=False, params={"region": "x"}))["start"].startswith("scheduled")


def test_operator_tool_arguments_resolve_run_values_when_rendered() -> None:
    value = StepRefValue({"$ref": "run.ds"})
    assert value.resolve(context()) == "2026-11-01"
    sql = StepRefValue([{"$ref": "params.region"}, {"$ref": "run.data_interval_end"}])
    assert sql.resolve(context(params={"region": "emea"})) == ["emea", "2026-11-02T00:00:00+00:00"]
    with pytest.raises(AirflowFailException, match="no logical date"):
        value.resolve(context(interval=False))


def test_operator_step_of_a_compiled_plan_holds_the_reference_as_data(tmp_path: Path) -> None:
    plan = build_plan(
        build_step("sql", "run_sql", {"sql": {"$ref": "params.query"}}),
        id="sql_plan",
        params={"query": {"type": "string", "default": "SELECT 1"}},
    )
    (tmp_path / "sql_plan.json").write_text(json.dumps(plan))
    dag = load_plan_dags(tmp_path, CATALOG)["sql_plan"]
    sql = dag.get_task("sql").sql
    assert isinstance(sql, StepRefValue) and sql.resolve(context(params={"query": "SELECT 2"})) == "SELECT 2"


def test_resolution_never_reaches_outside_the_scope() -> None:
    scope = RunScope({"ds": "2026-11-01"}, {"region": "emea"})
    assert resolve_with({"a": [{"$ref": "run.ds"}, {"$ref": "params.region"}]}, lambda s: {}, scope) == {
        "a": ["2026-11-01", "emea"]
    }
    with pytest.raises(StepError, match="no param 'other'"):
        resolve_with({"a": {"$ref": "params.other"}}, lambda s: {}, scope)


def test_compiled_plan_params_become_the_trigger_form(tmp_path: Path) -> None:
    dags = load_plan_dags(REPO / "dags" / "plans", orders_catalog)
    params = dags["regional_orders_report"].params
    assert params["region"] == "emea" and params["min_order_value"] == 0
    schema = params.get_param("region").schema
    assert schema["type"] == "string" and schema["enum"] == ["emea", "amer", "apac"]
    assert params.get_param("region").description
    validated = submitted(params, {"region": "apac", "min_order_value": 20})
    assert validated == {"region": "apac", "min_order_value": 20}
    from airflow.sdk.definitions.param import ParamValidationError

    with pytest.raises(ParamValidationError, match="'mars' is not one of"):
        submitted(params, {"region": "mars"})
    with pytest.raises(ParamValidationError):
        submitted(params, {"min_order_value": -1})
    assert "**Params** (trigger form)" in dags["regional_orders_report"].doc_md


def test_a_required_param_has_no_default_and_a_run_must_give_it(tmp_path: Path) -> None:
    plan = build_plan(
        build_step("load", args={"source": {"$ref": "params.source"}}),
        id="manual_plan",
        params={"source": {"type": "string", "minLength": 1}},
    )
    assert validate_plan(plan, CATALOG).ok  # manual: a person fills the form
    (tmp_path / "manual_plan.json").write_text(json.dumps(plan))
    params = load_plan_dags(tmp_path, CATALOG)["manual_plan"].params
    from airflow.sdk.definitions.param import ParamValidationError

    with pytest.raises(ParamValidationError):
        submitted(params, {})  # a run without it is refused
    assert submitted(params, {"source": "db"}) == {"source": "db"}
    scheduled = validate_plan({**plan, "schedule": "@daily"}, CATALOG)
    assert [i.code for i in scheduled.issues] == [Code.PARAM_REQUIRED_ON_SCHEDULE]


def test_param_values_of_a_run_time_plan_take_conf_then_default_and_check_the_schema() -> None:
    declared = {"region": {"type": "string", "enum": ["emea", "amer"], "default": "emea"}, "n": {"type": "integer"}}
    assert param_values(declared, {"n": 3, "goal": "g"}) == {"region": "emea", "n": 3}
    assert param_values(declared, {"n": 3, "region": "amer"}) == {"region": "amer", "n": 3}
    with pytest.raises(StepError, match="param 'n' has no value"):
        param_values(declared, {})
    with pytest.raises(StepError, match="param 'region': 'mars' is not one of"):
        param_values(declared, {"n": 1, "region": "mars"})


def test_a_plan_with_params_hashes_them_and_the_same_plan_serves_every_night(tmp_path: Path) -> None:
    path = REPO / "dags" / "plans" / "nightly_orders_report.json"
    (tmp_path / path.name).write_text(path.read_text())
    first = load_plan_dags(tmp_path, orders_catalog)["nightly_orders_report"]
    again = load_plan_dags(tmp_path, orders_catalog)["nightly_orders_report"]
    assert first.doc_md == again.doc_md  # the hash is in the docs: no date in the plan, nothing moves
    assert type(first.timetable).__name__ == "CronDataIntervalTimetable"


# -- the planner and the review --------------------------------------------------------------------------

RUN = run_values(
    run_id="scheduled__2026-11-02T00:00:00+00:00",
    run_type="scheduled",
    logical_date=START,
    data_interval_start=START,
    data_interval_end=END,
)
REF_STEPS = [
    {
        "id": "extract",
        "tool": "query_orders",
        "args": {
            "start_date": {"$ref": "run.data_interval_start_ds"},
            "end_date": {"$ref": "run.data_interval_last_ds"},
        },
    }
]
LITERAL_STEPS = [
    {"id": "extract", "tool": "query_orders", "args": {"start_date": "2026-11-01", "end_date": "2026-11-01"}}
]


def test_claude_is_told_the_run_in_the_user_turn_and_the_cached_prefix_stays_the_same(fake_claude: FakeClaude) -> None:
    fake_claude.reply_tool_use("submit_plan", {"steps": REF_STEPS})
    planner = ClaudePlanner(ModelGateway(fake_claude.client(), DEFAULT_MODEL), orders_catalog)
    planner.plan("Report yesterday's orders.", run=RUN)
    later = {**RUN, "data_interval_start_ds": "2026-11-02", "run_id": "scheduled__2026-11-03T00:00:00+00:00"}
    planner.plan("Report yesterday's orders.", run=later)
    first, second = (r.body for r in fake_claude.message_requests())
    assert first["system"] == second["system"] and first["tools"] == second["tools"]  # byte-stable prefix
    assert "run.data_interval_last_ds" in first["system"][0]["text"]  # the reference forms are taught
    user = first["messages"][0]["content"][0]["text"]
    assert "<run>" in user and "2026-11-01T00:00:00+00:00" in user and "2026-11-01" not in first["system"][0]["text"]
    assert "2026-11-02" in second["messages"][0]["content"][0]["text"]


def test_a_plan_with_this_runs_dates_written_literally_is_not_cached(fake_claude: FakeClaude, tmp_path: Path) -> None:
    cache = PlanCache(tmp_path / "cache")
    fake_claude.reply_tool_use("submit_plan", {"steps": LITERAL_STEPS})
    planner = ClaudePlanner(ModelGateway(fake_claude.client(), DEFAULT_MODEL), orders_catalog, cache=cache)
    result = planner.plan("Report yesterday's orders.", run=RUN)
    assert literal_run_values(result.plan, RUN) == ["2026-11-01"]
    assert list((tmp_path / "cache").glob("*.json")) == []  # tomorrow plans again instead of replaying today
    fake_claude.reset()
    fake_claude.reply_tool_use("submit_plan", {"steps": REF_STEPS})
    planner.plan("Report yesterday's orders.", run=RUN)
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1
    fake_claude.clear_requests()
    other_night = {**RUN, "data_interval_start_ds": "2026-11-05", "run_id": "scheduled__2026-11-06"}
    reused = planner.plan("Report yesterday's orders.", run=other_night)
    assert reused.cached and fake_claude.requests == []


def test_the_review_sees_the_run() -> None:
    from airflow_claude.automation.review import review_request

    plan = {"id": "p", "steps": REF_STEPS}
    summaries = [{"id": "extract", "tool": "query_orders", "status": "success", "run_values": {"run.ds": "2026-11-01"}}]
    request = review_request("goal", plan, summaries, model="m", max_tokens=10, run=RUN)
    payload = json.loads(request["messages"][0]["content"][0]["text"])
    assert payload["run"]["data_interval_start"] == "2026-11-01T00:00:00+00:00"
    assert payload["results"][0]["run_values"] == {"run.ds": "2026-11-01"}


def test_review_policy_defaults_to_always_and_refuses_anything_else() -> None:
    from airflow_claude.automation import AutomationSettings

    assert AutomationSettings().review == "always"
    assert AutomationSettings(review="on_failure").review == "on_failure"
    with pytest.raises(ValueError, match="review must be"):
        AutomationSettings(review="never")  # type: ignore[arg-type]
