"""The operator that runs one plan step backed by a Python tool.

Its arguments are data: ``template_fields`` is empty, so nothing from a plan is ever rendered.
References are resolved from upstream XCom, the resolved arguments are checked against the
tool's input schema, the tool runs with its :class:`ToolContext`, its output is checked
against the output schema, redacted, and returned (XCom ``return_value``) beside a provenance
stamp (XCom ``airflow_claude_provenance``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from airflow_claude.catalog.tool import PythonTool
from airflow_claude.runtime.execute import run_step
from airflow_claude.runtime.provenance import StepIdentity
from airflow_claude.runtime.resolve import xcom_fetcher


class PlanStepOperator(BaseOperator):
    """Run one plan step: one call of one Python tool with validated, resolved arguments."""

    template_fields: Sequence[str] = ()  # plan arguments are data: never Jinja-rendered
    ui_color = "#efe6fb"

    def __init__(self, *, tool: PythonTool, step_args: dict[str, Any], identity: StepIdentity, **kwargs: Any):
        super().__init__(**kwargs)
        self.tool = tool
        self.step_args = step_args
        self.identity = identity

    def execute(self, context: Any) -> Any:
        return run_step(
            self.tool, self.step_args, self.identity, context, fetch_output=xcom_fetcher(context["ti"]), log=self.log
        )
