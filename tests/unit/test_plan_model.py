"""The plan model: published JSON Schema in sync, strictness, and the content hash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError
from shop import diamond

import airflow_claude.plan as plan_pkg
from airflow_claude.fingerprint import canonical_json
from airflow_claude.plan import Plan, Step, plan_hash, plan_json_schema

SCHEMA_FILE = Path(plan_pkg.__file__).parent / "plan.schema.json"


def test_published_schema_is_in_sync() -> None:
    shipped = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert plan_json_schema() == shipped, (
        "airflow_claude/plan/plan.schema.json is out of date; regenerate it with: "
        "airflow-claude schema > airflow_claude/plan/plan.schema.json"
    )


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = plan_json_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("plan-v1.json")


def test_schema_accepts_a_good_plan() -> None:
    errors = list(Draft202012Validator(plan_json_schema()).iter_errors(diamond()))
    assert errors == []


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(colour="blue"), "Additional properties"),
        (lambda d: d["steps"][0].update(retry=1), "Additional properties"),
        (lambda d: d["provenance"].update(modle="x"), "Additional properties"),
        (lambda d: d.update(schema_version="2"), "'1' was expected"),
        (lambda d: d["steps"][0].update(id="a/../b"), "does not match"),
        (lambda d: d.update(steps=[]), "should be non-empty"),
        (lambda d: d["steps"][0].update(retries="3"), "is not valid under any of the given schemas"),
    ],
)
def test_schema_rejects(mutate: Any, message: str) -> None:
    data = diamond()
    mutate(data)
    errors = [e.message for e in Draft202012Validator(plan_json_schema()).iter_errors(data)]
    assert any(message in e for e in errors), errors


def test_model_forbids_unknown_keys_and_is_frozen() -> None:
    with pytest.raises(ValidationError, match=r"Extra inputs are not permitted"):
        Step.model_validate({"id": "a", "tool": "t", "colour": "blue"})
    step = Step(id="a", tool="t")
    with pytest.raises(ValidationError):
        step.id = "b"  # type: ignore[misc]


@pytest.mark.parametrize("field", ["retries", "timeout_seconds"])
@pytest.mark.parametrize("value", ["3", True])
def test_step_numbers_are_not_coerced(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        Step.model_validate({"id": "a", "tool": "t", field: value})


def test_timeout_accepts_an_integer() -> None:
    assert Step.model_validate({"id": "a", "tool": "t", "timeout_seconds": 30}).timeout_seconds == 30.0


# -- hash --------------------------------------------------------------------------------------


def _hash(data: dict[str, Any]) -> str:
    return Plan.model_validate(data).hash


def test_hash_is_stable_and_well_formed() -> None:
    first, second = _hash(diamond()), _hash(diamond())
    assert first == second
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 64


def test_hash_ignores_key_order_and_formatting() -> None:
    data = diamond()
    reordered = json.loads(json.dumps(dict(reversed(list(data.items())))))
    reordered["steps"] = [dict(reversed(list(s.items()))) for s in reordered["steps"]]
    assert _hash(reordered) == _hash(data)


def test_hash_equals_plan_hash_of_the_dump() -> None:
    plan = Plan.model_validate(diamond())
    assert plan.hash == plan_hash(plan.model_dump(mode="json", exclude={"params"}))  # no params: not hashed
    with_params = Plan.model_validate({**diamond(), "params": {"region": {"type": "string", "default": "emea"}}})
    assert with_params.hash == plan_hash(with_params.model_dump(mode="json"))
    assert with_params.hash != plan.hash


def test_hash_of_a_known_plan_is_pinned() -> None:
    """Stored hashes (DAG docs, ledgers, memory, parent plans) must survive an upgrade of this package."""
    data = diamond()
    data["provenance"].update(
        created_at="2026-11-27T20:30:00.123456+02:00", model="claude-x", usage={"input_tokens": 5}
    )
    assert _hash(data) == "sha256:c95a39bd690d325f5e25b73a6fce6dbb8dc31c32d8d216f4f4f150b9480b56ff"


def test_hash_tells_values_apart_that_json_mode_would_merge() -> None:
    """NaN, infinity and null are different arguments (a model answer may hold NaN): different hashes."""
    hashes = set()
    for value in (None, float("nan"), float("inf"), float("-inf")):
        data = diamond()
        data["steps"][0]["args"]["limit"] = value
        hashes.add(_hash(data))
    assert len(hashes) == 4


def test_canonical_bytes_are_the_canonical_json_of_the_dump() -> None:
    data = diamond()
    data["provenance"].update(created_at="2026-11-27T20:30:00Z", usage={"input_tokens": 5}, request_ids=["r1"])
    data["steps"][0].update(retries=1, timeout_seconds=5, description="é \u2028")
    data["schedule"] = "@daily"
    with_params = {**data, "params": {"n": {"type": "integer", "default": 3, "minimum": 1}}}
    for plan in (Plan.model_validate(diamond()), Plan.model_validate(data), Plan.model_validate(with_params)):
        dump = plan.model_dump(exclude=None if plan.params else {"params"})
        dump["provenance"] = plan.provenance.model_dump(mode="json")
        assert plan.canonical_bytes() == canonical_json(dump).encode()


def test_canonical_bytes_hold_the_arguments_verbatim() -> None:
    plan = Plan.model_validate(diamond())
    text = plan.canonical_bytes().decode()
    for step in plan.steps:
        assert json.dumps(step.args, sort_keys=True, separators=(",", ":"), ensure_ascii=False) in text


CHANGES = {
    "id": lambda d: d.update(id="diamond2"),
    "goal": lambda d: d.update(goal=d["goal"] + "!"),
    "schedule": lambda d: d.update(schedule="@daily"),
    "provenance": lambda d: d["provenance"].update(created_by="claude"),
    "provenance.model": lambda d: d["provenance"].update(model="claude-x"),
    "step.id": lambda d: d["steps"][3].update(id="announce2"),
    "step.tool": lambda d: d["steps"][0].update(tool="load_orders2"),
    "step.args": lambda d: d["steps"][0]["args"].update(limit=5),
    "step.args.nested": lambda d: d["steps"][1]["args"]["amounts"].append(1.0),
    "step.ref": lambda d: d["steps"][2]["args"].update(sql={"$ref": "steps.load.output.count"}),
    "step.depends_on": lambda d: d["steps"][3]["depends_on"].append("load"),
    "step.description": lambda d: d["steps"][0].update(description="x"),
    "step.retries": lambda d: d["steps"][0].update(retries=1),
    "step.timeout": lambda d: d["steps"][0].update(timeout_seconds=5),
    "step.order": lambda d: d["steps"].reverse(),
}


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_hash_changes_with_any_field(change: str) -> None:
    data = diamond()
    before = _hash(data)
    CHANGES[change](data)
    assert _hash(data) != before


def test_plan_hash_of_a_document_is_the_models_hash_whatever_the_dump() -> None:
    from airflow_claude.plan import Plan, plan_hash

    doc = {"schema_version": "1", "id": "p1", "goal": "g", "provenance": {"created_by": "human:t"}}
    doc["steps"] = [{"id": "a", "tool": "t", "args": {}}]
    model = Plan.model_validate(doc)
    assert plan_hash(doc) == plan_hash(model.model_dump(mode="json")) == model.hash
