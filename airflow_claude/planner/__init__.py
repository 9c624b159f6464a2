"""Claude as the planner: prompt, the model-call gateway (retries, cost, records), plan cache."""

from airflow_claude.planner.cache import PlanCache
from airflow_claude.planner.calls import CallPolicy
from airflow_claude.planner.gateway import DEFAULT_MODEL, ModelGateway
from airflow_claude.planner.planner import ClaudePlanner, PlanningResult
from airflow_claude.planner.pricing import CallUsage, ModelPrice, PriceTable
from airflow_claude.planner.retry import CLAUDE_RETRY_POLICY, ClaudeRetryPolicy

__all__ = [
    "CLAUDE_RETRY_POLICY",
    "DEFAULT_MODEL",
    "CallPolicy",
    "CallUsage",
    "ClaudePlanner",
    "ClaudeRetryPolicy",
    "ModelGateway",
    "ModelPrice",
    "PlanCache",
    "PlanningResult",
    "PriceTable",
]
