"""airflow-claude: Claude proposes a plan; Airflow runs it.

The names a DAG author needs are importable from here::

    from airflow_claude import Catalog, ToolContext, load_plan_dags, python_tool

They load on first use (PEP 562): Airflow's provider manager imports this package to call
``get_provider_info``, so importing it must stay cheap (no Airflow, no pydantic) and must not
start an import cycle. The sub-packages hold the rest:

- ``airflow_claude.plan``: the plan model, loading and validation.
- ``airflow_claude.catalog``: tools and the catalog (the allow-list).
- ``airflow_claude.factory``: ``load_plan_dags``, the one entry point that compiles plans to DAGs.
- ``airflow_claude.automation``: plan, approve, act and review in one DAG run.
- ``airflow_claude.testing``: the offline Claude for your tests.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the package that defines it (imported only when the name is first used)
_EXPORTS: dict[str, str] = {
    "AirflowClaudeError": "airflow_claude.errors",
    "AutomationSettings": "airflow_claude.automation",
    "CallPolicy": "airflow_claude.planner",
    "Catalog": "airflow_claude.catalog",
    "CircuitPolicy": "airflow_claude.catalog",
    "Compensation": "airflow_claude.catalog",
    "Plan": "airflow_claude.plan",
    "PlanLimits": "airflow_claude.plan",
    "PlanValidationError": "airflow_claude.errors",
    "PriceTable": "airflow_claude.planner",
    "ToolContext": "airflow_claude.catalog",
    "claude_automation": "airflow_claude.automation",
    "claude_automation_group": "airflow_claude.automation",
    "load_plan_dags": "airflow_claude.factory",
    "operator_tool": "airflow_claude.catalog",
    "python_tool": "airflow_claude.catalog",
    "validate_plan": "airflow_claude.plan",
}

if TYPE_CHECKING:  # what mypy and editors see; at run time __getattr__ imports on demand
    from airflow_claude.automation import AutomationSettings, claude_automation, claude_automation_group
    from airflow_claude.catalog import Catalog, CircuitPolicy, Compensation, ToolContext, operator_tool, python_tool
    from airflow_claude.errors import AirflowClaudeError, PlanValidationError
    from airflow_claude.factory import load_plan_dags
    from airflow_claude.plan import Plan, PlanLimits, validate_plan
    from airflow_claude.planner import CallPolicy, PriceTable

__all__ = [
    "AirflowClaudeError",
    "AutomationSettings",
    "CallPolicy",
    "Catalog",
    "CircuitPolicy",
    "Compensation",
    "Plan",
    "PlanLimits",
    "PlanValidationError",
    "PriceTable",
    "ToolContext",
    "__version__",
    "claude_automation",
    "claude_automation_group",
    "load_plan_dags",
    "operator_tool",
    "python_tool",
    "validate_plan",
]


def __getattr__(name: str) -> Any:
    """Import an exported name's package on first use, then keep the value here."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
