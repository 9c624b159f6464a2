"""The plan model, its JSON Schema, strict loading and validation."""

from airflow_claude.plan.diff import plan_changes
from airflow_claude.plan.limits import DEFAULT_LIMITS, PlanLimits
from airflow_claude.plan.model import SCHEMA_VERSION, Plan, Provenance, Step, plan_hash, plan_json_schema
from airflow_claude.plan.validator import ValidationResult, parse_plan, validate_plan

__all__ = [
    "DEFAULT_LIMITS",
    "SCHEMA_VERSION",
    "Plan",
    "PlanLimits",
    "Provenance",
    "Step",
    "ValidationResult",
    "parse_plan",
    "plan_changes",
    "plan_hash",
    "plan_json_schema",
    "validate_plan",
]
