"""Claude as the planner: prompt, model calls with capped retries, cost, plan cache."""

from airflow_claude.planner.cache import PlanCache
from airflow_claude.planner.calls import CallPolicy
from airflow_claude.planner.planner import DEFAULT_MODEL, ClaudePlanner, PlanningResult
from airflow_claude.planner.pricing import CallUsage, ModelPrice, PriceTable

__all__ = [
    "DEFAULT_MODEL",
    "CallPolicy",
    "CallUsage",
    "ClaudePlanner",
    "ModelPrice",
    "PlanCache",
    "PlanningResult",
    "PriceTable",
]
