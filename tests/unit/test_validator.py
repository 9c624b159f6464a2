"""validate_plan: one case per error code, every problem at once, hostile inputs, valid plans."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from shop import CATALOG, build_plan, build_step, diamond

from airflow_claude.errors import Code, PlanIssue, PlanValidationError
from airflow_claude.plan import Plan, PlanLimits, parse_plan, validate_plan
from airflow_claude.plan.validator import ValidationResult

#: Codes produced before validation, by the file loader (covered in test_loader.py).
LOADER_CODES = {
    Code.FILE_UNREADABLE,
    Code.FILE_TOO_LARGE,
    Code.FILE_NAME_MISMATCH,
    Code.MALFORMED_JSON,
    Code.DUPLICATE_JSON_KEY,
}
#: Produced by the DAG factory when compiling a valid plan, not by validating one.
FACTORY_CODES = {Code.COMPILE_FAILED}


@dataclass(frozen=True)
class Case:
    name: str
    data: Callable[[], Any]
    code: str
    step_id: str | None
    path: str
    message: str
    hint: str | None = None
    limits: PlanLimits = field(default_factory=PlanLimits)
    also: frozenset[str] = frozenset()


def _plan(*steps: dict[str, Any], **fields: Any) -> Callable[[], dict[str, Any]]:
    return lambda: build_plan(*steps, **fields)


def _without(key: str) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        data = build_plan()
        del data[key]
        return data

    return make


S = build_step
LOAD = S("load")
REF_SOURCE = {"$ref": "steps.load.output.source"}

CASES = [
    Case("top_level_array", lambda: [S("load")], Code.NOT_AN_OBJECT, None, "$", "got array"),
    Case("top_level_string", lambda: "plan", Code.NOT_AN_OBJECT, None, "$", "got string"),
    Case(
        "schema_version_2",
        _plan(schema_version="2"),
        Code.UNSUPPORTED_SCHEMA_VERSION,
        None,
        "$.schema_version",
        "'2' is not supported",
        hint="reads schema_version '1'",
    ),
    Case(
        "schema_version_int",
        _plan(schema_version=1),
        Code.UNSUPPORTED_SCHEMA_VERSION,
        None,
        "$.schema_version",
        "1 is not supported",
    ),
    Case(
        "unknown_step_field",
        _plan(S("load", retry=2)),
        Code.UNKNOWN_FIELD,
        "load",
        "$.steps[0].retry",
        "unknown field 'retry' in the step",
        hint="did you mean 'retries'?",
    ),
    Case(
        "unknown_plan_field",
        _plan(cron="@daily"),
        Code.UNKNOWN_FIELD,
        None,
        "$.cron",
        "unknown field 'cron' in the plan",
        hint="available: goal, id, params, provenance, schedule, schema_version, steps",
    ),
    Case(
        "unknown_provenance_field",
        _plan(provenance={"created_by": "claude", "modle": "claude-x"}),
        Code.UNKNOWN_FIELD,
        None,
        "$.provenance.modle",
        "in the provenance",
        hint="did you mean 'model'?",
    ),
    Case("missing_goal", _without("goal"), Code.MISSING_FIELD, None, "$.goal", "'goal' is missing"),
    Case("missing_provenance", _without("provenance"), Code.MISSING_FIELD, None, "$.provenance", "'provenance'"),
    Case(
        "missing_step_tool",
        lambda: build_plan({"id": "load", "args": {}}),
        Code.MISSING_FIELD,
        "load",
        "$.steps[0].tool",
        "'tool' is missing",
    ),
    Case(
        "depends_on_string",
        _plan({**S("load"), "depends_on": "other"}),
        Code.WRONG_TYPE,
        "load",
        "$.steps[0].depends_on",
        "valid list (got string)",
    ),
    Case(
        "args_array",
        _plan(S("load", args=["shop_db"])),
        Code.WRONG_TYPE,
        "load",
        "$.steps[0].args",
        "(got array)",
    ),
    Case(
        "retries_as_string",  # lax coercion would hide "9" from the retries limit check
        _plan(S("load", retries="9")),
        Code.WRONG_TYPE,
        "load",
        "$.steps[0].retries",
        "valid integer (got string)",
    ),
    Case(
        "timeout_as_bool",
        _plan(S("load", timeout_seconds=True)),
        Code.WRONG_TYPE,
        "load",
        "$.steps[0].timeout_seconds",
        "(got boolean)",
    ),
    Case(
        "negative_retries",
        _plan(S("load", retries=-1)),
        Code.INVALID_VALUE,
        "load",
        "$.steps[0].retries",
        "greater than or equal to 0",
    ),
    Case("empty_goal", _plan(goal=""), Code.INVALID_VALUE, None, "$.goal", "at least 1 character"),
    Case(
        "step_id_traversal",
        _plan(S("a/../b")),
        Code.INVALID_ID,
        "a/../b",
        "$.steps[0].id",
        "'a/../b' is not a valid id",
        hint="no dots or spaces",
    ),
    Case(
        "plan_id_traversal",
        _plan(id="../../etc/passwd"),
        Code.INVALID_ID,
        None,
        "$.id",
        "'../../etc/passwd' is not a valid id",
    ),
    Case("empty_plan", _plan(steps=[]), Code.EMPTY_PLAN, None, "$.steps", "no steps"),
    Case(
        "too_many_steps",
        _plan(*(S(f"s{i}") for i in range(6))),
        Code.TOO_MANY_STEPS,
        None,
        "$.steps",
        "6 steps, over the limit of 5",
        limits=PlanLimits(max_steps=5),
    ),
    Case(
        "duplicate_step_id",
        _plan(S("load"), S("load")),
        Code.DUPLICATE_STEP_ID,
        "load",
        "$.steps[1].id",
        "used by steps 0 and 1",
    ),
    Case(
        "unknown_dependency",
        _plan(S("load_orders"), S("report", depends_on=["load_order"])),
        Code.UNKNOWN_DEPENDENCY,
        "report",
        "$.steps[1].depends_on[0]",
        "unknown step 'load_order'",
        hint="did you mean 'load_orders'?",
    ),
    Case(
        "self_dependency",
        _plan(S("load", depends_on=["load"])),
        Code.SELF_DEPENDENCY,
        "load",
        "$.steps[0].depends_on[0]",
        "depends on itself",
    ),
    Case(
        "two_step_cycle",
        _plan(S("a", depends_on=["b"]), S("b", depends_on=["a"])),
        Code.DEPENDENCY_CYCLE,
        "a",
        "$.steps[0].depends_on",
        "dependency cycle: a -> b -> a",
        hint="directed acyclic graph",
    ),
    Case(
        "three_step_cycle_with_tail",
        _plan(S("a", depends_on=["c"]), S("b", depends_on=["a"]), S("c", depends_on=["b"]), S("d", depends_on=["a"])),
        Code.DEPENDENCY_CYCLE,
        "a",
        "$.steps[0].depends_on",
        "a -> b -> c -> a",
    ),
    Case(
        "fan_in",
        _plan(S("a"), S("b"), S("c"), S("d", depends_on=["a", "b", "c"])),
        Code.FAN_IN_EXCEEDED,
        "d",
        "$.steps[3].depends_on",
        "waits for 3 steps, over the limit of 2",
        limits=PlanLimits(max_fan_in=2),
    ),
    Case(
        "fan_out",
        _plan(S("a"), S("b", depends_on=["a"]), S("c", depends_on=["a"]), S("d", depends_on=["a"])),
        Code.FAN_OUT_EXCEEDED,
        "a",
        "$.steps[0]",
        "3 steps depend on 'a', over the limit of 2",
        limits=PlanLimits(max_fan_out=2),
    ),
    Case(
        "depth",
        _plan(*(S(f"s{i}", depends_on=[f"s{i - 1}"] if i else []) for i in range(4))),
        Code.DEPTH_EXCEEDED,
        "s3",
        "$.steps",
        "4 long, over the limit of 3",
        limits=PlanLimits(max_depth=3),
    ),
    Case(
        "level_too_wide",
        _plan(S("root"), *(S(f"w{i}", depends_on=["root"]) for i in range(3))),
        Code.LEVEL_TOO_WIDE,
        "w0",
        "$.steps",
        "3 steps would run side by side at level 2, over the limit of 2",
        limits=PlanLimits(max_level_width=2),
    ),
    Case(
        "unknown_tool_typo",
        _plan(S("load", "load_order", {})),
        Code.UNKNOWN_TOOL,
        "load",
        "$.steps[0].tool",
        "tool 'load_order' is not in the catalog 'shop'",
        hint="did you mean 'load_orders'?",
    ),
    Case(
        "unknown_tool_lists_tools",
        _plan(S("mail", "send_email", {})),
        Code.UNKNOWN_TOOL,
        "mail",
        "$.steps[0].tool",
        "'send_email'",
        hint="available: load_orders, notify, run_sql, summarize",
    ),
    Case(
        "argument_wrong_type",
        _plan(S("load", args={"source": "shop_db", "limit": "ten"})),
        Code.INVALID_ARGUMENT,
        "load",
        "$.steps[0].args.limit",
        "'ten' is not of type 'integer'",
    ),
    Case(
        "argument_missing",
        _plan(S("load", args={"limit": 5})),
        Code.INVALID_ARGUMENT,
        "load",
        "$.steps[0].args",
        "'source' is a required property",
    ),
    Case(
        "argument_misspelt",
        _plan(S("load", args={"source": "shop_db", "limt": 5})),
        Code.INVALID_ARGUMENT,
        "load",
        "$.steps[0].args",
        "'limt' was unexpected",
        hint="did you mean 'limit'?",
    ),
    Case(
        "unknown_argument_holding_a_reference",
        _plan(LOAD, S("copy", args={"source": "x", "bogus": REF_SOURCE}, depends_on=["load"])),
        Code.INVALID_ARGUMENT,
        "copy",
        "$.steps[1].args.bogus",
        "unknown argument 'bogus'",
        hint="available: limit, source",
    ),
    Case(
        "undeclared_operator_template_field_via_reference",
        _plan(LOAD, S("sql", "run_sql", {"sql": "select 1", "database": REF_SOURCE}, ["load"])),
        Code.INVALID_ARGUMENT,
        "sql",
        "$.steps[1].args.database",
        "unknown argument 'database'",
    ),
    Case(
        "fixed_argument",
        _plan(S("sql", "run_sql", {"sql": "select 1", "conn_id": "prod_admin"})),
        Code.FIXED_ARGUMENT,
        "sql",
        "$.steps[0].args.conn_id",
        "'conn_id' of tool 'run_sql' is fixed by the catalog",
    ),
    Case(
        "argument_too_large",
        _plan(S("load", args={"source": "x" * 200})),
        Code.ARGUMENT_TOO_LARGE,
        "load",
        "$.steps[0].args",
        "over the limit of 100",
        hint="by reference",
        limits=PlanLimits(max_arg_bytes=100),
    ),
    Case(
        "nesting_too_deep",
        _plan(S("sum", "summarize", {"amounts": [[[[1.0]]]]})),
        Code.NESTING_TOO_DEEP,
        "sum",
        "$.steps[0].args",
        "nest 5 levels deep, over the limit of 3",
        limits=PlanLimits(max_nesting=3),
    ),
    Case(
        "ref_not_steps_form",
        _plan(LOAD, S("sum", "summarize", {"amounts": {"$ref": "steps.load.rows"}}, ["load"])),
        Code.MALFORMED_REFERENCE,
        "sum",
        "$.steps[1].args.amounts",
        "'steps.load.rows' is not of the form 'steps.<step_id>.output",
        hint='{"$ref": "steps.<step_id>.output.<key>"}',
    ),
    Case(
        "ref_with_extra_key",
        _plan(
            LOAD, S("copy", args={"source": {"$ref": "steps.load.output.source", "default": "x"}}, depends_on=["load"])
        ),
        Code.MALFORMED_REFERENCE,
        "copy",
        "$.steps[1].args.source",
        "only the '$ref' key, found also ['default']",
    ),
    Case(
        "ref_not_a_string",
        _plan(LOAD, S("copy", args={"source": {"$ref": 3}}, depends_on=["load"])),
        Code.MALFORMED_REFERENCE,
        "copy",
        "$.steps[1].args.source",
        "'$ref' must be a string",
    ),
    Case(
        "ref_nested_in_list",
        _plan(LOAD, S("sum", "summarize", {"amounts": [1.0, {"$ref": "steps.load.output..amount"}]}, ["load"])),
        Code.MALFORMED_REFERENCE,
        "sum",
        "$.steps[1].args.amounts[1]",
        "path segment '' in",
    ),
    Case(
        "ref_unknown_step",
        _plan(LOAD, S("copy", args={"source": {"$ref": "steps.lod.output.source"}}, depends_on=["load"])),
        Code.REFERENCE_UNKNOWN_STEP,
        "copy",
        "$.steps[1].args.source",
        "refers to unknown step 'lod'",
        hint="did you mean 'load'?",
    ),
    Case(
        "ref_not_upstream",
        _plan(LOAD, S("copy", args={"source": REF_SOURCE})),
        Code.REFERENCE_NOT_UPSTREAM,
        "copy",
        "$.steps[1].args.source",
        "does not run before 'copy'",
        hint="add 'load' to depends_on of 'copy'",
    ),
    Case(
        "ref_to_sibling_branch",
        _plan(
            LOAD,
            S("left", depends_on=["load"]),
            S("right", args={"source": {"$ref": "steps.left.output.source"}}, depends_on=["load"]),
        ),
        Code.REFERENCE_NOT_UPSTREAM,
        "right",
        "$.steps[2].args.source",
        "step 'left', which does not run before 'right'",
    ),
    Case(
        "ref_bad_path_typeddict",
        _plan(
            S("sum", "summarize", {"amounts": [1.0]}),
            S("copy", args={"source": {"$ref": "steps.sum.output.totl"}}, depends_on=["sum"]),
        ),
        Code.REFERENCE_BAD_PATH,
        "copy",
        "$.steps[1].args.source",
        "tool 'summarize' output has no 'totl'",
        hint="available: currency, top_customers, total",
    ),
    Case(
        "ref_bad_path_nested_model",
        _plan(LOAD, S("sum", "summarize", {"amounts": [{"$ref": "steps.load.output.rows.0.amout"}]}, ["load"])),
        Code.REFERENCE_BAD_PATH,
        "sum",
        "$.steps[1].args.amounts[0]",
        "output has no 'rows.0.amout'",
    ),
    Case(
        "ref_bad_path_key_into_list",
        _plan(LOAD, S("sum", "summarize", {"amounts": [{"$ref": "steps.load.output.rows.first.amount"}]}, ["load"])),
        Code.REFERENCE_BAD_PATH,
        "sum",
        "$.steps[1].args.amounts[0]",
        "no 'rows.first.amount'",
    ),
    Case(
        "ref_bad_path_into_scalar",
        _plan(LOAD, S("copy", args={"source": {"$ref": "steps.load.output.source.name"}}, depends_on=["load"])),
        Code.REFERENCE_BAD_PATH,
        "copy",
        "$.steps[1].args.source",
        "no 'source.name'",
    ),
    Case(
        "ref_into_non_template_operator_param",
        _plan(LOAD, S("sql", "run_sql", {"sql": "select 1", "split_statements": REF_SOURCE}, ["load"])),
        Code.REFERENCE_NOT_SUPPORTED,
        "sql",
        "$.steps[1].args.split_statements",
        "argument 'split_statements' of operator tool 'run_sql' cannot hold a reference",
        hint="references work in:",
    ),
    Case(
        "ref_type_mismatch",
        _plan(LOAD, S("copy", args={"source": {"$ref": "steps.load.output.count"}}, depends_on=["load"])),
        Code.REFERENCE_TYPE_MISMATCH,
        "copy",
        "$.steps[1].args.source",
        "produces ['integer'] but 'source' of 'load_orders' takes ['string']",
    ),
    Case(
        "ref_type_mismatch_object_for_list",
        _plan(LOAD, S("sum", "summarize", {"amounts": {"$ref": "steps.load.output.rows.0"}}, ["load"])),
        Code.REFERENCE_TYPE_MISMATCH,
        "sum",
        "$.steps[1].args.amounts",
        "produces ['object'] but 'amounts'",
    ),
    Case(
        "retries_over_tool_limit",
        _plan(S("load", retries=3)),
        Code.RETRIES_EXCEED_LIMIT,
        "load",
        "$.steps[0].retries",
        "retries=3 is over tool 'load_orders''s limit of 2",
    ),
    Case(
        "timeout_over_tool_limit",
        _plan(S("load", timeout_seconds=601)),
        Code.TIMEOUT_EXCEEDS_LIMIT,
        "load",
        "$.steps[0].timeout_seconds",
        "limit of 600",
    ),
    Case(
        "invalid_cron",
        _plan(schedule="every day at 6"),
        Code.INVALID_SCHEDULE,
        None,
        "$.schedule",
        "'every day at 6' is neither a cron expression nor a preset",
        hint="5-field cron",
    ),
    Case(
        "cron_out_of_range",
        _plan(schedule="61 * * * *"),
        Code.INVALID_SCHEDULE,
        None,
        "$.schedule",
        "'61 * * * *'",
    ),
    # -- run and params references ------------------------------------------------------------
    Case(
        "ref_to_connection",
        _plan(S("tell", "notify", {"channel": "#x", "message": {"$ref": "conn.warehouse.password"}})),
        Code.REFERENCE_FORBIDDEN_NAMESPACE,
        "tell",
        "$.steps[0].args.message",
        "'conn' in 'conn.warehouse.password' is not a reference namespace",
        hint="'run.<field>'",
    ),
    Case(
        "ref_to_variable",
        _plan(S("tell", "notify", {"channel": "#x", "message": {"$ref": "var.value.secret"}})),
        Code.REFERENCE_FORBIDDEN_NAMESPACE,
        "tell",
        "$.steps[0].args.message",
        "'var' in 'var.value.secret'",
    ),
    Case(
        "ref_to_macros",
        _plan(S("tell", "notify", {"channel": "#x", "message": {"$ref": "macros.ds_add"}})),
        Code.REFERENCE_FORBIDDEN_NAMESPACE,
        "tell",
        "$.steps[0].args.message",
        "'macros'",
    ),
    Case(
        "ref_to_task_instance",
        _plan(S("tell", "notify", {"channel": "#x", "message": {"$ref": "ti.xcom_pull"}})),
        Code.REFERENCE_FORBIDDEN_NAMESPACE,
        "tell",
        "$.steps[0].args.message",
        "'ti'",
    ),
    Case(
        "ref_unknown_run_field",
        _plan(S("load", args={"source": {"$ref": "run.data_interval_strat"}})),
        Code.REFERENCE_UNKNOWN_RUN_FIELD,
        "load",
        "$.steps[0].args.source",
        "'data_interval_strat' is not a run field",
        hint="did you mean 'data_interval_start'?",
    ),
    Case(
        "ref_path_into_run_field",
        _plan(S("load", args={"source": {"$ref": "run.logical_date.year"}})),
        Code.REFERENCE_INTO_SCALAR,
        "load",
        "$.steps[0].args.source",
        "run.logical_date is a string, it has no 'year'",
    ),
    Case(
        "ref_template_in_run_ref",
        _plan(S("load", args={"source": {"$ref": "run.{{ ds }}"}})),
        Code.REFERENCE_TEMPLATE,
        "load",
        "$.steps[0].args.source",
        "holds template syntax",
    ),
    Case(
        "ref_template_in_params_ref",
        _plan(S("load", args={"source": {"$ref": "params.{{ params.region }}"}})),
        Code.REFERENCE_TEMPLATE,
        "load",
        "$.steps[0].args.source",
        "holds template syntax",
    ),
    Case(
        "run_field_type_mismatch",
        _plan(S("load", args={"source": "db", "limit": {"$ref": "run.ds"}})),
        Code.REFERENCE_TYPE_MISMATCH,
        "load",
        "$.steps[0].args.limit",
        "'run.ds' produces ['string'] but 'limit' of 'load_orders' takes ['integer']",
    ),
    Case(
        "param_type_mismatch",
        _plan(
            S("load", args={"source": "db", "limit": {"$ref": "params.region"}}),
            params={"region": {"type": "string", "default": "emea"}},
        ),
        Code.REFERENCE_TYPE_MISMATCH,
        "load",
        "$.steps[0].args.limit",
        "'params.region' produces ['string']",
    ),
    Case(
        "param_not_declared",
        _plan(
            S("load", args={"source": {"$ref": "params.regoin"}}),
            params={"region": {"type": "string", "default": "emea"}},
        ),
        Code.PARAM_NOT_DECLARED,
        "load",
        "$.steps[0].args.source",
        "param 'regoin', which the plan does not declare",
        hint="did you mean 'region'?",
    ),
    Case(
        "param_bad_path",
        _plan(
            S("load", args={"source": {"$ref": "params.region.name"}}),
            params={"region": {"type": "string", "default": "emea"}},
        ),
        Code.REFERENCE_BAD_PATH,
        "load",
        "$.steps[0].args.source",
        "param 'region' has no 'name'",
    ),
    Case(
        "param_name_not_identifier",
        _plan(LOAD, params={"min-value": {"type": "number", "default": 1}}),
        Code.INVALID_PARAM_NAME,
        None,
        "$.params.min-value",
        "'min-value' is not a valid param name",
    ),
    Case(
        "param_shadows_run_field",
        _plan(LOAD, params={"ds": {"type": "string", "default": "2026-01-01"}}),
        Code.PARAM_SHADOWS_RUN_FIELD,
        None,
        "$.params.ds",
        "param 'ds' has the name of a run field",
        hint='{"$ref": "run.ds"}',
    ),
    Case(
        "param_default_breaks_schema",
        _plan(LOAD, params={"min_value": {"type": "number", "minimum": 0, "default": -5}}),
        Code.PARAM_DEFAULT_INVALID,
        None,
        "$.params.min_value.default",
        "the default -5 breaks its own schema",
    ),
    Case(
        "param_unknown_keyword",
        _plan(LOAD, params={"region": {"type": "string", "defualt": "emea"}}),
        Code.INVALID_PARAM_SCHEMA,
        None,
        "$.params.region.defualt",
        "'defualt' is not a keyword a param may use",
        hint="did you mean 'default'?",
    ),
    Case(
        "param_bad_schema",
        _plan(LOAD, params={"region": {"type": "text", "default": "emea"}}),
        Code.INVALID_PARAM_SCHEMA,
        None,
        "$.params.region.type",
        "param 'region':",
    ),
    Case(
        "param_without_type",
        _plan(LOAD, params={"region": {"default": "emea"}}),
        Code.INVALID_PARAM_SCHEMA,
        None,
        "$.params.region",
        "param 'region' has no type",
    ),
    Case(
        "param_required_on_scheduled_plan",
        _plan(LOAD, schedule="@daily", params={"region": {"type": "string"}}),
        Code.PARAM_REQUIRED_ON_SCHEDULE,
        None,
        "$.params.region",
        "param 'region' has no default, but the plan has a schedule",
    ),
]


def _only(result: ValidationResult, code: str) -> PlanIssue:
    matching = [issue for issue in result.issues if issue.code == code]
    assert len(matching) == 1, f"expected one {code}, got {result.issues}"
    return matching[0]


def test_every_code_has_a_case() -> None:
    all_codes = {value for key, value in vars(Code).items() if key.isupper()}
    covered = {case.code for case in CASES} | LOADER_CODES | FACTORY_CODES
    assert covered == all_codes, f"codes without a test: {sorted(all_codes - covered)}"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_issue(case: Case) -> None:
    result = validate_plan(case.data(), CATALOG, limits=case.limits, file="plans/x.json")

    assert not result.ok
    assert result.plan is None
    assert {issue.code for issue in result.issues} == {case.code} | case.also, result.issues
    issue = _only(result, case.code)
    assert issue.step_id == case.step_id
    assert issue.path == case.path
    assert case.message in issue.message
    if case.hint is not None:
        assert issue.hint is not None and case.hint in issue.hint
    assert issue.file == "plans/x.json"


def test_issue_carries_plan_id_and_renders_everything() -> None:
    result = validate_plan(build_plan(S("load", "load_order", {})), CATALOG, file="p.json")
    issue = _only(result, Code.UNKNOWN_TOOL)
    assert issue.plan_id == "daily_orders"
    assert str(issue) == (
        "p.json plan=daily_orders step=load at $.steps[0].tool: [unknown_tool] tool 'load_order' is not in the "
        "catalog 'shop' (hint: did you mean 'load_orders'?)"
    )
    assert list(issue.to_dict()) == ["file", "plan_id", "step_id", "path", "code", "message", "hint"]


@pytest.mark.parametrize("bad_id", ["a/../b", "../x", "a b", "ünïcode", "", "a.b", "1st", "x" * 65])
def test_invalid_step_ids(bad_id: str) -> None:
    result = validate_plan(build_plan(S(bad_id)), CATALOG)
    issue = _only(result, Code.INVALID_ID)
    assert issue.step_id == bad_id
    assert issue.path == "$.steps[0].id"


def test_reports_every_problem_at_once() -> None:
    data = build_plan(
        S("load"),
        S("mail", "send_mail", {}),  # unknown tool
        S("count", args={"source": "shop_db", "limit": "ten"}),  # wrong argument type
        S("a", depends_on=["b"]),  # a cycle ...
        S("b", depends_on=["a"]),  # ... of two steps
        S("copy", args={"source": REF_SOURCE}),  # reference to a step that is not upstream
        S("retry", retries=9),  # over the tool's retries limit
        schedule="not a schedule",
        colour="blue",  # unknown plan field
    )
    result = validate_plan(data, CATALOG)

    found = {(issue.code, issue.step_id) for issue in result.issues}
    assert found == {
        (Code.UNKNOWN_FIELD, None),
        (Code.UNKNOWN_TOOL, "mail"),
        (Code.INVALID_ARGUMENT, "count"),
        (Code.DEPENDENCY_CYCLE, "a"),
        (Code.REFERENCE_NOT_UPSTREAM, "copy"),
        (Code.RETRIES_EXCEED_LIMIT, "retry"),
        (Code.INVALID_SCHEDULE, None),
    }
    with pytest.raises(PlanValidationError) as raised:
        result.raise_for_issues()
    assert len(raised.value.issues) == 7
    assert str(raised.value).startswith("7 problems in plan:")


def test_a_cycle_does_not_hide_reference_problems_elsewhere() -> None:
    data = build_plan(
        S("a", args={"source": {"$ref": "steps.b.output.source"}}, depends_on=["b"]),  # in the cycle: not judged
        S("b", args={"source": {"$ref": "steps.zzz.output.x"}}, depends_on=["a"]),
        LOAD,
        S("copy", args={"source": REF_SOURCE}),  # outside the cycle, not downstream of load
    )
    found = {(issue.code, issue.step_id) for issue in validate_plan(data, CATALOG).issues}
    assert found == {
        (Code.DEPENDENCY_CYCLE, "a"),
        (Code.REFERENCE_UNKNOWN_STEP, "b"),
        (Code.REFERENCE_NOT_UPSTREAM, "copy"),
    }


def test_ten_thousand_steps_is_rejected_fast() -> None:
    data = build_plan(*(S(f"s{i}", depends_on=[f"s{i - 1}"] if i else []) for i in range(10_000)))
    started = time.perf_counter()
    result = validate_plan(data, CATALOG)
    elapsed = time.perf_counter() - started

    assert [issue.code for issue in result.issues] == [Code.TOO_MANY_STEPS]
    assert "10000 steps, over the limit of 500" in result.issues[0].message
    assert elapsed < 1.0


def test_deeply_nested_arguments_do_not_overflow_the_stack() -> None:
    deep: dict[str, Any] = {"source": "shop_db"}
    node = deep
    for _ in range(5_000):
        node["next"] = {}
        node = node["next"]
    result = validate_plan(build_plan(S("load", args=deep)), CATALOG)
    assert [issue.code for issue in result.issues] == [Code.NESTING_TOO_DEEP]


@pytest.mark.parametrize("schedule", [None, "@daily", "@once", "0 6 * * 1-5", "*/15 * * * *"])
def test_valid_schedules(schedule: str | None) -> None:
    result = validate_plan(build_plan(schedule=schedule), CATALOG)
    assert result.ok, result.issues


def test_valid_plan_with_references_returns_a_plan() -> None:
    result = validate_plan(diamond(), CATALOG)

    assert result.ok, result.issues
    assert isinstance(result.plan, Plan)
    assert [step.id for step in result.plan.steps] == ["load", "summary", "sql", "announce"]
    assert result.plan.steps[1].args == {"amounts": [{"$ref": "steps.load.output.rows.0.amount"}]}
    assert parse_plan(diamond(), CATALOG) == result.plan


@pytest.mark.parametrize(
    "ref",
    [
        "steps.load.output",  # the whole output
        "steps.load.output.rows",
        "steps.load.output.rows.0",
        "steps.load.output.rows.12.customer",
        "steps.load.output.source",
    ],
)
def test_valid_reference_paths(ref: str) -> None:
    # inside a list, a reference is checked for its path only (no whole-argument type check)
    data = build_plan(LOAD, S("sum", "summarize", {"amounts": [{"$ref": ref}]}, ["load"]))
    result = validate_plan(data, CATALOG)
    assert result.ok, result.issues


def test_integer_reference_feeds_a_number_argument() -> None:
    data = build_plan(
        LOAD, S("copy", args={"source": "x", "limit": {"$ref": "steps.load.output.rows.0.id"}}, depends_on=["load"])
    )
    assert validate_plan(data, CATALOG).ok


def test_references_in_template_fields_of_an_operator_tool_pass() -> None:
    data = build_plan(LOAD, S("sql", "run_sql", {"sql": REF_SOURCE, "split_statements": True}, ["load"]))
    assert validate_plan(data, CATALOG).ok


def test_transitive_ancestor_may_be_referenced() -> None:
    data = build_plan(LOAD, S("mid", depends_on=["load"]), S("last", args={"source": REF_SOURCE}, depends_on=["mid"]))
    assert validate_plan(data, CATALOG).ok


@pytest.mark.parametrize("shape", ["chain", "wide"])
def test_thousand_step_plan_validates(shape: str) -> None:
    if shape == "chain":
        steps = [S("s0")] + [
            S(f"s{i}", args={"source": {"$ref": f"steps.s{i - 1}.output.source"}}, depends_on=[f"s{i - 1}"])
            for i in range(1, 1000)
        ]
    else:
        steps = [S("s0")] + [
            S(f"s{i}", "summarize", {"amounts": {"$ref": "steps.s0.output.rows.0.amount"}}, ["s0"])
            for i in range(1, 1000)
        ]
        for step_ in steps[1:]:
            step_["args"] = {"amounts": [step_["args"]["amounts"]]}
    limits = PlanLimits(max_steps=1000, max_depth=1000, max_fan_out=1000)
    started = time.perf_counter()
    result = validate_plan(build_plan(*steps), CATALOG, limits=limits)
    assert result.ok, result.issues[:3]
    assert result.plan is not None and len(result.plan.steps) == 1000
    assert time.perf_counter() - started < 10  # loose: benchmarks measure this properly


def test_result_carries_the_plan_hash_only_when_valid() -> None:
    good = validate_plan(diamond(), CATALOG)
    assert good.ok and good.plan is not None
    assert good.plan_hash == good.plan.hash
    bad = diamond()
    bad["steps"][0]["tool"] = "no_such_tool"
    assert validate_plan(bad, CATALOG).plan_hash is None


def test_size_limit_is_per_step_even_when_the_whole_plan_is_over_it() -> None:
    """The whole-plan encoding is only a shortcut: over the limit, each step is measured alone."""
    steps = [S(f"load{i}", args={"source": "x" * 60}) for i in range(5)]
    limits = PlanLimits(max_arg_bytes=100)
    assert validate_plan(build_plan(*steps), CATALOG, limits=limits).ok
    steps.append(S("big", args={"source": "x" * 120}))
    issues = validate_plan(build_plan(*steps), CATALOG, limits=limits).issues
    assert [(i.code, i.step_id) for i in issues] == [(Code.ARGUMENT_TOO_LARGE, "big")]


def test_shape_limits_apply_to_small_plans_under_small_limits() -> None:
    """Shape checks are skipped only when a plan is too small to break any limit."""
    plan = build_plan(S("a"), S("b", depends_on=["a"]))
    assert validate_plan(plan, CATALOG, limits=PlanLimits(max_depth=2)).ok
    issues = validate_plan(plan, CATALOG, limits=PlanLimits(max_depth=1)).issues
    assert [i.code for i in issues] == [Code.DEPTH_EXCEEDED]
