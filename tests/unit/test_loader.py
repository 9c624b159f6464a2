"""load_plan_file / parse_json_text: strict JSON, file-level checks, and never an exception."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from shop import CATALOG, build_plan, build_step, diamond

from airflow_claude.errors import Code
from airflow_claude.plan import Plan, PlanLimits
from airflow_claude.plan.loader import load_plan_file, parse_json_text

WritePlan = Callable[..., Path]


def test_valid_file_loads(write_plan: WritePlan) -> None:
    path = write_plan(diamond())
    result = load_plan_file(path, CATALOG)
    assert result.ok, result.issues
    assert isinstance(result.plan, Plan)
    assert result.plan.id == "diamond"


def test_accepts_str_path(write_plan: WritePlan) -> None:
    assert load_plan_file(str(write_plan(build_plan())), CATALOG).ok


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    result = load_plan_file(tmp_path / "nope.json", CATALOG)
    [issue] = result.issues
    assert issue.code == Code.FILE_UNREADABLE
    assert issue.file == str(tmp_path / "nope.json")
    assert "cannot read" in issue.message
    assert result.plan is None


def test_directory_is_unreadable(tmp_path: Path) -> None:
    folder = tmp_path / "plan.json"
    folder.mkdir()
    assert [i.code for i in load_plan_file(folder, CATALOG).issues] == [Code.FILE_UNREADABLE]


def test_file_too_large(write_plan: WritePlan) -> None:
    path = write_plan(build_plan(goal="g" * 500))
    result = load_plan_file(path, CATALOG, limits=PlanLimits(max_file_bytes=200))
    [issue] = result.issues
    assert issue.code == Code.FILE_TOO_LARGE
    assert "over the limit of 200" in issue.message
    assert issue.path == "$"


def test_file_name_must_equal_plan_id(write_plan: WritePlan) -> None:
    path = write_plan(build_plan(id="daily_orders"), name="daily-orders")
    result = load_plan_file(path, CATALOG)
    [issue] = result.issues
    assert issue.code == Code.FILE_NAME_MISMATCH
    assert issue.plan_id == "daily_orders"
    assert issue.path == "$.id"
    assert "'daily-orders.json'" in issue.message
    assert issue.hint is not None and "rename the file to 'daily_orders.json'" in issue.hint
    assert result.plan is None
    assert not result.ok


def test_file_name_check_can_be_disabled(write_plan: WritePlan) -> None:
    path = write_plan(build_plan(), name="draft")
    assert load_plan_file(path, CATALOG, require_id_matches_file=False).ok


def test_file_name_mismatch_is_reported_with_other_issues(write_plan: WritePlan) -> None:
    path = write_plan(build_plan(build_step("load", "nope", {})), name="other")
    codes = sorted(i.code for i in load_plan_file(path, CATALOG).issues)
    assert codes == [Code.FILE_NAME_MISMATCH, Code.UNKNOWN_TOOL]


def test_validation_issues_carry_the_file(write_plan: WritePlan) -> None:
    path = write_plan(build_plan(build_step("load", "load_order", {})))
    [issue] = load_plan_file(path, CATALOG).issues
    assert issue.code == Code.UNKNOWN_TOOL
    assert issue.file == str(path)
    assert issue.plan_id == "daily_orders"


# -- strict JSON -------------------------------------------------------------------------------

LOADER_CASES: list[tuple[str, bytes, str, str]] = [
    ("truncated", b'{"schema_version": "1", "id": ', Code.MALFORMED_JSON, "line 1, column 31"),
    ("trailing_comma", b'{"id": "x",}', Code.MALFORMED_JSON, "malformed JSON"),
    ("empty_file", b"", Code.MALFORMED_JSON, "malformed JSON"),
    ("single_quotes", b"{'id': 'x'}", Code.MALFORMED_JSON, "property name enclosed in double quotes"),
    ("nan", b'{"id": "x", "goal": NaN}', Code.MALFORMED_JSON, "NaN is not valid JSON"),
    ("infinity", b'{"id": "x", "n": -Infinity}', Code.MALFORMED_JSON, "-Infinity is not valid JSON"),
    ("overflowing_float", b'{"id": "x", "n": 1e400}', Code.MALFORMED_JSON, "1e400 is out of range"),
    ("latin1", '{"goal": "café"}'.encode("latin-1"), Code.MALFORMED_JSON, "not UTF-8"),
    ("invalid_utf8", b'{"goal": "\xff\xfe"}', Code.MALFORMED_JSON, "not UTF-8"),
    ("deep_nesting", b"[" * 100_000 + b"]" * 100_000, Code.MALFORMED_JSON, "nested too deeply"),
    ("duplicate_top_key", b'{"id": "a", "id": "b"}', Code.DUPLICATE_JSON_KEY, "key 'id' appears more than once"),
    (
        "duplicate_nested_key",
        b'{"steps": [{"id": "s", "args": {"sql": "select 1", "sql": "drop table x"}}]}',
        Code.DUPLICATE_JSON_KEY,
        "key 'sql'",
    ),
]


@pytest.mark.parametrize(("raw", "code", "message"), [c[1:] for c in LOADER_CASES], ids=[c[0] for c in LOADER_CASES])
def test_strict_json(write_plan: WritePlan, raw: bytes, code: str, message: str) -> None:
    path = write_plan(raw, name="plan")
    result = load_plan_file(path, CATALOG)
    [issue] = result.issues
    assert issue.code == code
    assert message in issue.message
    assert issue.file == str(path)
    assert result.plan is None


def test_duplicate_key_hint() -> None:
    _, [issue] = parse_json_text('{"a": 1, "b": 2, "a": 3}')
    assert issue.hint is not None and "keep exactly one" in issue.hint
    assert "['a', 'b', 'a']" in issue.message


def test_parse_json_text_accepts_str_and_keeps_unicode() -> None:
    data, issues = parse_json_text('{"goal": "résumé ✓", "n": 1.5}')
    assert issues == []
    assert data == {"goal": "résumé ✓", "n": 1.5}


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ([build_step("a")], Code.NOT_AN_OBJECT),
        (build_plan(schema_version="2"), Code.UNSUPPORTED_SCHEMA_VERSION),
        (build_plan(steps=[]), Code.EMPTY_PLAN),
        ({**build_plan(), "extra": True}, Code.UNKNOWN_FIELD),
        (build_plan(build_step("a", depends_on=["b"]), build_step("b", depends_on=["a"])), Code.DEPENDENCY_CYCLE),
        (build_plan(build_step("a", depends_on=["a"])), Code.SELF_DEPENDENCY),
        (build_plan(build_step("a", "nope", {})), Code.UNKNOWN_TOOL),
        (build_plan(build_step("ünïcode")), Code.INVALID_ID),
        (build_plan(build_step("a/../b")), Code.INVALID_ID),
    ],
)
def test_bad_documents_from_files(write_plan: WritePlan, payload: Any, code: str) -> None:
    path = write_plan(json.dumps(payload, ensure_ascii=False), name="daily_orders")
    result = load_plan_file(path, CATALOG)
    assert [i.code for i in result.issues] == [code]


def test_ten_thousand_step_file(write_plan: WritePlan) -> None:
    path = write_plan(build_plan(*(build_step(f"s{i}") for i in range(10_000))))
    [issue] = load_plan_file(path, CATALOG).issues
    assert issue.code == Code.TOO_MANY_STEPS
