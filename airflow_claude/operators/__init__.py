"""Operators for DAG authors."""

from airflow_claude.operators.plan import ClaudePlanOperator

__all__ = ["ClaudePlanOperator"]
