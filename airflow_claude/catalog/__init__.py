"""Tools and the catalog: the allow-list a plan is checked against."""

from airflow_claude.catalog.catalog import Catalog
from airflow_claude.catalog.tool import (
    CircuitPolicy,
    Compensation,
    OperatorTool,
    PythonTool,
    Tool,
    ToolContext,
    operator_tool,
    python_tool,
)

__all__ = [
    "Catalog",
    "CircuitPolicy",
    "Compensation",
    "OperatorTool",
    "PythonTool",
    "Tool",
    "ToolContext",
    "operator_tool",
    "python_tool",
]
