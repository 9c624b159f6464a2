"""The plan: a small graph of steps, each one call of an allow-listed tool. Data, never code.

A plan is what Claude writes and a person reviews. It is validated (``validator.py``) before
anything compiles or runs, and identified by its id and its content hash.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from airflow_claude.fingerprint import digest_of, json_encoder
from airflow_claude.plan.params import PARAMS_JSON_SCHEMA

SCHEMA_VERSION = "1"

#: Step and plan ids become Airflow task/DAG ids and file names: ASCII letters, digits, ``_``
#: and ``-`` only (no dots, so no ``..``), starting with a letter or underscore.
ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"

Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Usage(_Strict):
    """Token usage of the model calls that produced a plan."""

    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    cache_creation_input_tokens: int = Field(0, ge=0)
    cache_read_input_tokens: int = Field(0, ge=0)


class Provenance(_Strict):
    """Who or what made the plan, when, and against which catalog and prompt."""

    created_by: str = Field(..., min_length=1, max_length=200, description="'human:<name>', 'claude', or a tool name.")
    created_at: datetime | None = None
    catalog_fingerprint: str | None = Field(
        None, max_length=128, description="Fingerprint of the catalog the plan was written against."
    )
    model: str | None = Field(None, max_length=200)
    prompt_template: str | None = Field(None, max_length=200)
    prompt_hash: str | None = Field(None, max_length=128)
    request_ids: list[str] = Field(default_factory=list, max_length=50)
    usage: Usage | None = None
    cost_usd: str | None = Field(None, pattern=r"^\d+(\.\d+)?$", description="Decimal, as a string.")
    repair_attempts: int = Field(0, ge=0)
    parent_plan_id: str | None = Field(None, max_length=200)
    parent_plan_hash: str | None = Field(None, max_length=128)


#: name -> JSON Schema (with ``default``, ``description``, ``title``); checked by ``plan/params.py``
ParamDeclarations = Annotated[dict[str, dict[str, Any]], WithJsonSchema(PARAMS_JSON_SCHEMA)]


class Step(_Strict):
    """One call of one tool. ``args`` may hold references (``steps.<id>.output...``, ``run.*``, ``params.*``)."""

    id: Identifier = Field(..., description="Unique within the plan; becomes the Airflow task id.")
    tool: str = Field(..., min_length=1, max_length=200, description="A tool name from the catalog.")
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="Arguments, checked by the tool's schema; a value may be a reference (see $defs/Reference).",
    )
    depends_on: list[str] = Field(default_factory=list, description="Ids of steps that must finish first.")
    description: str = Field("", max_length=2000)
    # strict: a lax "9" or true would be coerced after the validator's limit checks saw a non-number
    retries: int | None = Field(None, ge=0, strict=True, description="Airflow retries; at most the tool's limit.")
    timeout_seconds: float | None = Field(
        None, gt=0, strict=True, description="Execution timeout; within the tool's limit."
    )


class Plan(_Strict):
    """A plan document. ``schema_version`` lets the format evolve without silent misreads."""

    schema_version: Literal["1"] = Field(..., description="Plan format version.")
    id: Identifier = Field(..., description="Plan id; becomes the DAG id (with an optional prefix).")
    goal: str = Field(..., min_length=1, max_length=8000)
    steps: list[Step] = Field(..., min_length=1)
    schedule: str | None = Field(
        None, max_length=100, description="Cron expression or preset such as '@daily'; null = manual."
    )
    provenance: Provenance
    params: ParamDeclarations = Field(
        default_factory=dict,
        description="Run parameters for {\"$ref\": \"params.<name>\"}; the compiled DAG's trigger form.",
    )

    @property
    def hash(self) -> str:
        """Content hash of the plan: a changed plan is a new plan, never a silent mutation."""
        return digest_of(self.canonical_bytes())

    def canonical_bytes(self) -> bytes:
        """The plan's canonical JSON, UTF-8: what :attr:`hash` is taken of.

        The same text as ``canonical_json`` of ``model_dump()`` with the provenance in JSON mode
        (a test keeps them equal), encoded straight from the model's fields without building
        that dump. Step arguments are encoded as given: pydantic's JSON mode would turn NaN into
        null and rewrite keys that are not Unicode, so two different plans could share a hash.
        """
        return _PLAN_JSON(self).encode()


def _plan_part(value: Any) -> Any:
    """The canonical encoder's view of a model inside a plan: its fields, or JSON mode for provenance."""
    if isinstance(value, Provenance):
        return value.model_dump(mode="json")  # created_at: the ISO text pydantic gives
    if isinstance(value, Plan) and not value.params:
        # a plan without params hashes as it did before params existed: stored hashes stay valid
        return {k: v for k, v in value.__dict__.items() if k != "params"}
    if isinstance(value, _Strict):
        return value.__dict__  # exactly the model's fields (extra="forbid", no private attributes)
    return str(value)  # as canonical_json does


_PLAN_JSON = json_encoder(",", ":", default=_plan_part)


def plan_hash(data: dict[str, Any]) -> str:
    """The hash of a plan document: :attr:`Plan.hash` of its model (a model dump's ``params: {}`` and
    defaults hash as the model does). Raises pydantic's ``ValidationError`` for what is no plan.
    """
    return Plan.model_validate(data).hash


def reference_json_schema() -> dict[str, Any]:
    """The reference object: one ``$ref`` key naming a step output, a run field or a declared param."""
    from airflow_claude.plan.params import PARAM_NAME_PATTERN
    from airflow_claude.plan.run_fields import RUN_FIELDS

    segment = r"(\.[A-Za-z0-9_-]{1,128})*"
    pattern = (
        rf"^(steps\.{ID_PATTERN[1:-1]}\.output{segment}"
        rf"|run\.({'|'.join(sorted(RUN_FIELDS))})"
        rf"|params\.{PARAM_NAME_PATTERN[1:-1]}{segment})$"
    )
    return {
        "type": "object",
        "description": "Replaced whole at run time: a step's output, a value of the run, or a declared param.",
        "properties": {"$ref": {"type": "string", "pattern": pattern}},
        "required": ["$ref"],
        "additionalProperties": False,
    }


def plan_json_schema() -> dict[str, Any]:
    """The published JSON Schema of the plan format (draft 2020-12), with the reference form in ``$defs``."""
    schema = Plan.model_json_schema()
    schema.setdefault("$defs", {})["Reference"] = reference_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://airflow-claude.dev/schemas/plan-v{SCHEMA_VERSION}.json"
    return schema
