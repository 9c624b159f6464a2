"""Plan parameters: typed run inputs a plan declares, shown in the compiled DAG's trigger form.

A plan's ``params`` maps a name to a small JSON Schema (``type`` and the usual constraints,
plus ``default``, ``description`` and ``title``). The compiled DAG gets them as Airflow
``Param``\\ s, so the trigger form shows typed fields and Airflow refuses a bad ``conf`` with the
schema's message. Steps read them with ``{"$ref": "params.<name>"}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import jsonschema

from airflow_claude.errors import Code, StepError, choices_hint, did_you_mean
from airflow_claude.plan.run_fields import RUN_FIELDS

PARAM_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
_TYPES = ["array", "boolean", "integer", "null", "number", "object", "string"]
#: What a declaration may say: annotations for the form, and validation keywords Airflow's form renders.
KEYWORDS = frozenset(
    {
        "type",
        "default",
        "description",
        "title",
        "enum",
        "const",
        "examples",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "items",
        "minItems",
        "maxItems",
        "uniqueItems",
    }
)

PARAMS_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "propertyNames": {"pattern": PARAM_NAME_PATTERN},
    "additionalProperties": {
        "type": "object",
        "description": "A JSON Schema for the value, with an optional default (a param without one is required).",
        "properties": {
            "type": {
                "anyOf": [
                    {"enum": _TYPES},
                    {"type": "array", "items": {"enum": _TYPES}, "minItems": 1},
                ]
            },
            "default": {},
            "description": {"type": "string"},
            "title": {"type": "string"},
            **{k: {} for k in sorted(KEYWORDS - {"type", "default", "description", "title"})},
        },
        "required": ["type"],
        "additionalProperties": False,
    },
}


class ParamIssue(NamedTuple):
    code: str
    message: str
    path: str
    hint: str | None = None


def param_issues(declared: Any, *, scheduled: bool) -> Iterator[ParamIssue]:
    """Every problem with a plan's ``params`` declarations (the JSON document, not yet a model)."""
    if not isinstance(declared, dict):
        return  # the schema check reports the wrong type
    for name, spec in declared.items():
        path = f"$.params.{name}"
        if not isinstance(name, str) or not re.fullmatch(PARAM_NAME_PATTERN, name):
            yield ParamIssue(
                Code.INVALID_PARAM_NAME,
                f"{name!r} is not a valid param name",
                path,
                f"param names match {PARAM_NAME_PATTERN}: letters, digits and '_', starting with a letter or '_'",
            )
            continue
        if name in RUN_FIELDS:
            yield ParamIssue(
                Code.PARAM_SHADOWS_RUN_FIELD,
                f"param '{name}' has the name of a run field",
                path,
                f"use {{\"$ref\": \"run.{name}\"}} for the run's value, or give the param another name",
            )
        if not isinstance(spec, dict):
            continue  # the schema check reports the wrong type
        yield from _spec_issues(name, spec, path, scheduled=scheduled)


def _spec_issues(name: str, spec: dict[str, Any], path: str, *, scheduled: bool) -> Iterator[ParamIssue]:
    unknown = sorted(set(spec) - KEYWORDS)
    for key in unknown:
        yield ParamIssue(
            Code.INVALID_PARAM_SCHEMA,
            f"param '{name}': '{key}' is not a keyword a param may use",
            f"{path}.{key}",
            did_you_mean(key, KEYWORDS) or choices_hint(sorted(KEYWORDS)),
        )
    if "type" not in spec:
        yield ParamIssue(
            Code.INVALID_PARAM_SCHEMA,
            f"param '{name}' has no type",
            path,
            "give it a JSON type, e.g. \"type\": \"string\", so the trigger form shows a typed field",
        )
    schema = param_schema(spec)
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "".join(f".{p}" for p in exc.absolute_path)
        yield ParamIssue(Code.INVALID_PARAM_SCHEMA, f"param '{name}': {exc.message}", f"{path}{where}")
        return
    if unknown:
        return
    if "default" in spec:
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(spec["default"]), key=str)
        if errors:
            yield ParamIssue(
                Code.PARAM_DEFAULT_INVALID,
                f"param '{name}': the default {spec['default']!r} breaks its own schema: {errors[0].message}",
                f"{path}.default",
            )
    elif scheduled:
        yield ParamIssue(
            Code.PARAM_REQUIRED_ON_SCHEDULE,
            f"param '{name}' has no default, but the plan has a schedule: a scheduled run has nobody to fill it",
            path,
            "give it a default, or make the plan manual (schedule null)",
        )


def param_schema(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The validation part of a declaration (without its default)."""
    return {k: v for k, v in spec.items() if k != "default"}


def param_values(declared: Mapping[str, Mapping[str, Any]], given: Mapping[str, Any]) -> dict[str, Any]:
    """The run's value of each declared param (``given``, else the default), checked by its schema.

    Compiled DAGs get this check from Airflow (the params are the DAG's); a plan made at run time
    runs in its automation's DAG, whose params are the automation's, so it is checked here.
    """
    values: dict[str, Any] = {}
    for name, spec in sorted(declared.items()):
        if name in given and given[name] is not None:
            value = given[name]
        elif "default" in spec:
            value = spec["default"]
        else:
            raise StepError(f"param '{name}' has no value and no default: pass it in the run's conf")
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(param_schema(spec)).iter_errors(value))
        if error is not None:
            raise StepError(f"param '{name}': {error.message}")
        values[name] = value
    return values
