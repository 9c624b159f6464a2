"""The compiled fast path must be sound (True only where jsonschema says valid) and actually fast-path valid input."""

from __future__ import annotations

import copy
import decimal
import enum
import itertools
import math
import random
import string
from collections import OrderedDict
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any, Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field, TypeAdapter
from shop import CATALOG as SHOP

from airflow_claude.examples.orders import catalog as ORDERS
from airflow_claude.plan.fastcheck import compile_valid_check

# ---------------------------------------------------------------- schemas under test


class Address(BaseModel):
    street: str = Field(min_length=1, max_length=20)
    zip: str = Field(pattern=r"^\d{5}$", examples=["12345", "00000", "99501"])


class Customer(BaseModel):
    name: str
    age: int = Field(ge=0, le=150)
    score: float = Field(gt=0, lt=1)
    tier: Literal["free", "pro"] = "free"
    nickname: str | None = None
    address: Address
    previous: list[Address] = []
    tags: set[str] = set()
    weights: dict[str, float] = {}
    counts: list[int] = Field(default_factory=list, max_length=5)
    level: int | None = Field(default=None, ge=1, le=3)


class Tree(BaseModel):
    value: int
    children: list[Tree] = []


HAND_WRITTEN: dict[str, dict[str, Any]] = {
    "pydantic_nested": Customer.model_json_schema(),
    "pydantic_recursive": TypeAdapter(Tree).json_schema(),
    "list_int": TypeAdapter(list[int]).json_schema(),
    "dict_str_float": TypeAdapter(dict[str, float]).json_schema(),
    "literal_mixed": {"enum": ["a", 1, 2.5, True, None]},
    "const_zero": {"const": 0},
    "type_list": {"type": ["string", "integer", "null"], "minLength": 2, "maxLength": 4, "maximum": 10},
    "untyped_keywords": {"minimum": 5, "maxLength": 3, "items": {"type": "string"}, "required": ["a"]},
    "booleans": {
        "type": "object",
        "properties": {"never": False, "anything": True, "flag": {"type": "boolean"}},
        "additionalProperties": {"type": "integer", "minimum": 0, "exclusiveMaximum": 100},
    },
    "all_of": {"allOf": [{"type": "integer", "minimum": 0}, {"maximum": 50}]},
    "any_of_objects": {
        "anyOf": [
            {
                "type": "object",
                "properties": {"n": {"type": "integer"}},
                "required": ["n"],
                "additionalProperties": False,
            },
            {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 3, "uniqueItems": True},
        ],
    },
    "number_bounds": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "constrained": {
        "type": "object",
        "properties": {
            "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$", "examples": ["ABC-12", "XYZ-00"]},
            "count": {"type": "integer", "minimum": 1, "maximum": 9},
            "ids": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True, "minItems": 2},
        },
        "required": ["code", "count"],
        "additionalProperties": False,
    },
}


def _catalog_cases() -> Iterator[tuple[str, dict[str, Any], Callable[[Any], bool] | None, jsonschema.Validator]]:
    """Every orders/shop tool, once per subset of its required arguments that may be left out (references)."""
    for catalog in (ORDERS, SHOP):
        for tool in catalog.values():
            required = tool.input_schema.get("required", [])
            for size in range(len(required) + 1):
                for left_out in itertools.combinations(required, size):
                    optional = frozenset(left_out)
                    schema = {**tool.input_schema, "required": [r for r in required if r not in optional]}
                    name = f"{catalog.name}.{tool.name}-{'-'.join(sorted(optional))}"
                    yield name, schema, tool.input_fast_check(optional), tool.input_validator_without(optional)


CASES = [
    *_catalog_cases(),
    *((name, s, compile_valid_check(s), jsonschema.Draft202012Validator(s)) for name, s in HAND_WRITTEN.items()),
]


# ---------------------------------------------------------------- instance generation


class Color(enum.IntEnum):
    RED = 1


class Text(str):
    pass


ODD: list[Any] = [
    True, False, 0, 1, -1, 1.0, 0.5, 2.5, 10**20, -(10**20), math.nan, math.inf, -math.inf,
    "", "a", "x" * 300, None, [], [1, "a"], ["a", "a"], [1, True], {}, {"k": 1},
    decimal.Decimal("1.5"), Fraction(1, 2), (1, 2), OrderedDict(a=1), Text("ab"), Color.RED,
]  # fmt: skip


def _resolve(schema: Any, root: dict[str, Any]) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def generate(schema: Any, root: dict[str, Any], rng: random.Random, depth: int = 0) -> Any:
    """An ordinary instance that fits ``schema`` (plain JSON types only)."""
    schema = _resolve(schema, root)
    if schema is True or schema == {}:
        return rng.choice([0, 7, "s", None, True, [1], {"k": "v"}])
    for sub in schema.get("allOf", []):
        schema = {**{k: v for k, v in schema.items() if k != "allOf"}, **_resolve(sub, root)}
    if "anyOf" in schema:
        branches = schema["anyOf"]
        simplest = [b for b in branches if _resolve(b, root).get("type") == "null"]
        return generate(rng.choice(simplest if depth > 3 and simplest else branches), root, rng, depth + 1)
    if "enum" in schema:
        return rng.choice([v for v in schema["enum"] if not isinstance(v, list | dict)])
    if "const" in schema:
        return schema["const"]
    if "examples" in schema:
        return rng.choice(schema["examples"])
    kinds = schema.get("type", ["integer", "number", "string", "boolean", "null", "array", "object"])
    kind = rng.choice([kinds] if isinstance(kinds, str) else kinds)
    if kind in ("integer", "number"):
        low = max(schema.get("minimum", -1000), schema.get("exclusiveMinimum", -1001) + 1)
        high = min(schema.get("maximum", 1000), schema.get("exclusiveMaximum", 1001) - 1)
        if kind == "number" and "exclusiveMinimum" in schema:
            return rng.uniform(schema["exclusiveMinimum"], schema.get("exclusiveMaximum", 1000)) or 0.5
        value = rng.randint(math.ceil(low), math.floor(high))
        return value + 0.25 if kind == "number" and rng.random() < 0.5 and value + 0.25 <= high else value
    if kind == "string":
        low = schema.get("minLength", 0)
        size = rng.randint(low, min(schema.get("maxLength", 30), low + 10))
        return "".join(rng.choice(string.ascii_letters + "-_ é") for _ in range(size))
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "array":
        low = schema.get("minItems", 0)
        size = low if depth > 3 else rng.randint(low, min(schema.get("maxItems", 5), low + 4))
        items: list[Any] = []
        for _ in range(size * 5):
            if len(items) == size:
                break
            item = generate(schema.get("items", True), root, rng, depth + 1)
            if not schema.get("uniqueItems") or jsonschema.Draft202012Validator({"uniqueItems": True}).is_valid(
                [*items, item]
            ):
                items.append(item)
        return items
    value: dict[str, Any] = {}
    for name, sub in schema.get("properties", {}).items():
        if sub is not False and (name in schema.get("required", []) or (depth < 4 and rng.random() < 0.6)):
            value[name] = generate(sub, root, rng, depth + 1)
    for name in schema.get("required", []):
        value.setdefault(name, generate(True, root, rng, depth + 1))
    extra = schema.get("additionalProperties", True)
    if extra is not False and depth < 4:
        for i in range(rng.randint(0, 2)):
            value[f"extra_{i}"] = generate(extra, root, rng, depth + 1)
    return value


_DELETE = object()


def _places(value: Any, parent: Any = None, key: Any = None) -> Iterator[tuple[Any, Any]]:
    yield parent, key
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _places(v, value, k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _places(v, value, i)


def _variant(current: Any, rng: random.Random) -> Any:
    options: list[Any] = [rng.choice(ODD), rng.choice(ODD), _DELETE]
    if isinstance(current, dict):
        near = [f"{k}_" for k in current] + [str(k).upper() for k in current] + ["extra"]
        options.append({**current, rng.choice(near): rng.choice(ODD)})
        if current:
            gone = rng.choice(list(current))
            options.append({k: v for k, v in current.items() if k != gone})
    elif isinstance(current, list):
        options += [[*current, rng.choice(ODD)], current + current[:1], current[1:], []]
    elif isinstance(current, bool):
        options += [int(current), float(current), str(current)]
    elif isinstance(current, int):
        options += [current + rng.choice([1, -1, 1000, -1000]), float(current), bool(current), str(current)]
    elif isinstance(current, float):
        options += [int(current) if math.isfinite(current) else 0, current * 1000, -current, str(current)]
    elif isinstance(current, str):
        options += [current * 50, "", current + "!", " " + current, Text(current), current[:1]]
    choice = rng.choice(options)
    return choice if choice is _DELETE else copy.deepcopy(choice)  # never share ODD's lists and dicts


def mutate(value: Any, rng: random.Random) -> Any:
    """One to three random changes: wrong types, bools and floats for ints, missing and extra keys, bad values."""
    value = copy.deepcopy(value)
    for _ in range(rng.randint(1, 3)):
        parent, key = rng.choice(list(_places(value)))
        new = _variant(value if parent is None else parent[key], rng)
        if parent is None:
            value = {} if new is _DELETE else new
        elif new is _DELETE:
            del parent[key]
        else:
            parent[key] = new
    return value


def valid(validator: Any, instance: Any) -> bool:
    try:
        return bool(validator.is_valid(instance))
    except decimal.InvalidOperation:  # jsonschema's uniqueItems sorts Decimal with NaN: not valid either
        return False


def unsound(check: Callable[[Any], bool], validator: Any, instances: list[Any]) -> list[Any]:
    """Instances the fast check accepts but jsonschema rejects (or fails on): must be none."""
    return [x for x in instances if check(x) is True and not valid(validator, x)]


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize(("name", "schema", "check", "validator"), CASES, ids=[case[0] for case in CASES])
def test_sound_on_fuzzed_instances_and_true_on_ordinary_valid_ones(
    name: str, schema: dict[str, Any], check: Callable[[Any], bool] | None, validator: Any
) -> None:
    assert check is not None, f"{name}: every schema here uses only supported keywords"
    rng = random.Random(f"fastcheck-{name}")
    ordinary = [generate(schema, schema, rng) for _ in range(150)]
    assert all(validator.is_valid(x) for x in ordinary), "the generator must make valid instances"
    assert [x for x in ordinary if check(x) is not True] == [], "ordinary valid instances must take the fast path"
    mutated = [mutate(rng.choice(ordinary), rng) for _ in range(450)]
    assert unsound(check, validator, mutated) == []
    rejected = [x for x in mutated if not valid(validator, x)]
    assert len(rejected) > len(mutated) // 5, "mutations must produce plenty of invalid instances"
    # results are plain bools, and some mutations were valid and still accepted (a fast path, not a shortcut to no)
    assert {check(x) for x in mutated} == {True, False}


def test_the_harness_catches_an_unsound_check() -> None:
    schema = Customer.model_json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    rng = random.Random(1)
    instances = [mutate(generate(schema, schema, rng), rng) for _ in range(300)]
    assert unsound(lambda x: True, validator, instances)
    loose = compile_valid_check({**schema, "required": []})  # forgets required properties
    assert loose is not None and unsound(loose, validator, instances)
    assert unsound(lambda x: isinstance(x, dict), validator, instances)


@pytest.mark.parametrize(
    ("schema", "instance", "expected"),
    [
        ({"type": "integer"}, 1, True),
        ({"type": "integer"}, True, False),  # bool is not an integer for jsonschema
        ({"type": "integer"}, 1.0, False),  # jsonschema says yes: conservative
        ({"type": "number"}, 1.5, True),
        ({"type": "number"}, False, False),
        ({"type": "number"}, decimal.Decimal("1"), False),  # jsonschema says yes: conservative
        ({"type": "boolean"}, 0, False),
        ({"type": "string"}, Text("a"), False),  # subclass: conservative
        ({"type": "array"}, (1, 2), False),
        ({"type": "object"}, OrderedDict(), False),  # subclass: conservative
        ({"type": "null"}, None, True),
        ({"enum": [1]}, True, False),
        ({"enum": [True]}, 1, False),
        ({"enum": [1]}, 1.0, False),  # jsonschema says yes: conservative
        ({"enum": [[1, 2]]}, [1, 2], False),  # non-scalar members: conservative
        ({"enum": [0.0]}, -0.0, True),
        ({"const": None}, None, True),
        ({"const": None}, False, False),
        ({"const": "a"}, "a", True),
        ({"minimum": 5}, True, True),  # numeric keywords do not apply to bools
        ({"minimum": 5}, 4, False),
        ({"minimum": 5}, decimal.Decimal(9), False),  # jsonschema applies them to Decimal: conservative
        ({"maximum": 5}, math.nan, False),
        ({"exclusiveMaximum": 5}, 5, False),
        ({"exclusiveMinimum": 5}, 5.000001, True),
        ({"maxLength": 1}, "é", True),
        ({"maxLength": 1}, ["a", "b"], True),  # string keywords do not apply to lists
        ({"minItems": 1}, [], False),
        ({"pattern": "b"}, "abc", True),  # re.search, not re.match
        ({"pattern": "^b"}, "abc", False),
        ({"uniqueItems": True}, [1, True], True),
        ({"uniqueItems": True}, [1, 1], False),
        ({"uniqueItems": True}, [None, None], False),
        ({"uniqueItems": True}, [1, 1.0], False),
        ({"uniqueItems": True}, [1.5, 2, 2.5], True),
        ({"uniqueItems": True}, [0.0, False], True),
        ({"uniqueItems": True}, [[1], [2]], False),  # non-scalar items: conservative
        ({"uniqueItems": True}, ["a", "b", 3, None, False], True),
        ({"type": "string", "format": "date"}, "not a date", True),  # format does not assert in jsonschema
        ({"additionalProperties": False}, {1: 1}, False),
        ({"properties": {"a": {"type": "integer"}}}, {"a": True}, False),
        ({"items": False}, [], True),
        ({"items": False}, [1], False),
        ({"anyOf": []}, 1, False),
        ({"allOf": []}, 1, True),
        ({"type": []}, 1, False),
        (True, 1, True),
        (False, 1, False),
    ],
)
def test_json_type_semantics(schema: Any, instance: Any, expected: bool) -> None:
    check = compile_valid_check(schema)
    assert check is not None
    assert check(instance) is expected
    if expected:
        assert jsonschema.Draft202012Validator(schema).is_valid(instance)


@pytest.mark.parametrize(
    "schema",
    [
        {"oneOf": [{"type": "string"}]},
        {"not": {"type": "string"}},
        {"if": {"type": "string"}, "then": {"minLength": 1}, "else": {}},
        {"prefixItems": [{"type": "string"}]},
        {"patternProperties": {"^a": {"type": "string"}}},
        {"dependentRequired": {"a": ["b"]}},
        {"propertyNames": {"pattern": "^a"}},
        {"contains": {"type": "string"}},
        {"unevaluatedProperties": False},
        {"multipleOf": 2},
        {"$id": "https://example.com/s"},
        {"$anchor": "here"},
        {"$dynamicRef": "#meta"},
        {"x-custom": 1},
        {"$ref": "other.json#/$defs/A"},
        {"$ref": "#/properties/a"},
        {"$ref": "#/$defs/Missing"},
        {"$ref": "#/$defs/a~1b", "$defs": {"a/b": {}}},
        {"$ref": "#/definitions/A", "definitions": {"A": {}}},
        {"$schema": "http://json-schema.org/draft-07/schema#"},
        {"properties": {"a": {"$schema": "http://json-schema.org/draft-07/schema#"}}},
        {"type": "any"},
        {"type": 3},
        {"minimum": True},
        {"minimum": "1"},
        {"minLength": 1.0},
        {"items": [{"type": "string"}]},
        {"enum": "abc"},
        {"required": "a"},
        {"pattern": "("},
        {"properties": {"a": {"items": {"oneOf": []}}}},  # deep inside
        {"$ref": "#/$defs/A", "$defs": {"A": {"not": {}}}},  # behind a reference
        {"$ref": "#/$defs/A", "$defs": {"A": {"anyOf": [{"$ref": "#/$defs/A"}]}}},  # a cycle jsonschema loops on
        {"$ref": "#/$defs/A", "$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}}},
        {"allOf": {"type": "string"}},
        {"additionalProperties": 0},
        [],
    ],
)
def test_unsupported_schemas_compile_to_none(schema: Any) -> None:
    assert compile_valid_check(schema) is None


def test_supported_annotations_and_unused_defs_are_ignored() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": "c",
        "$defs": {"Unused": {"oneOf": []}},
        "type": "object",
        "title": "t",
        "description": "d",
        "default": {},
        "examples": [{}],
        "deprecated": True,
        "readOnly": False,
        "writeOnly": False,
        "properties": {"a": {"type": "string", "format": "email"}},
    }
    check = compile_valid_check(schema)
    assert check is not None
    assert check({"a": "no-email"}) is True
    assert check({"a": 1}) is False


def test_recursive_schema_compiles_and_checks_every_level() -> None:
    schema = TypeAdapter(Tree).json_schema()
    check = compile_valid_check(schema)
    assert check is not None
    validator = jsonschema.Draft202012Validator(schema)

    def tree(depth: int, leaf: Any = 0) -> dict[str, Any]:
        return {"value": leaf if depth == 0 else depth, "children": [tree(depth - 1, leaf)] if depth else []}

    assert check(tree(50)) is True and validator.is_valid(tree(50))
    assert check(tree(50, leaf="0")) is False and not validator.is_valid(tree(50, leaf="0"))
    deep = tree(50)
    node = deep
    for _ in range(30):
        node = node["children"][0]
    node["extra"] = 1  # Tree allows extra properties
    assert check(deep) is True and validator.is_valid(deep)
    del node["value"]
    assert check(deep) is False and not validator.is_valid(deep)
    deepest: dict[str, Any] = {"value": 0}
    for _ in range(5000):
        deepest = {"value": 1, "children": [deepest]}
    assert check(deepest) is False  # deeper than the stack allows: a plain False, the caller asks jsonschema


def test_mutually_recursive_definitions() -> None:
    schema = {
        "$defs": {
            "A": {"type": "object", "properties": {"b": {"$ref": "#/$defs/B"}}, "additionalProperties": False},
            "B": {"type": "array", "items": {"anyOf": [{"$ref": "#/$defs/A"}, {"type": "integer"}]}},
        },
        "$ref": "#/$defs/A",
    }
    check = compile_valid_check(schema)
    assert check is not None
    assert check({"b": [1, {"b": [2, {}]}]}) is True
    assert check({"b": [1, {"b": [2, {"c": 1}]}]}) is False


def test_tool_fast_check_is_cached_and_drops_only_the_optional_required() -> None:
    tool = ORDERS["notify"]
    check = tool.input_fast_check()
    assert check is not None and tool.input_fast_check() is check and tool.input_fast_check(frozenset()) is check
    partial = tool.input_fast_check(frozenset({"channel"}))
    assert partial is not None and partial is not check
    assert tool.input_fast_check(frozenset({"channel"})) is partial
    assert check({"message": "m"}) is False
    assert partial({"message": "m"}) is True
    assert partial({}) is False  # "message" is still required
    assert partial({"message": "m", "channel": 1}) is False  # present, so still checked
    sql = ORDERS["run_sql"].input_fast_check()
    assert sql is not None and sql({"sql": "SELECT 1"}) is True and sql({"sql": ""}) is False  # minLength 1
