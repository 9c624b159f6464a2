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
from airflow_claude.observability import lineage
from airflow_claude.runtime.execute import run_step
from airflow_claude.runtime.provenance import PROVENANCE_XCOM_KEY, StepIdentity
from airflow_claude.runtime.replay import check_compiled_replay
from airflow_claude.runtime.resolve import output_fetcher
from airflow_claude.ui.links import RunPageLink


class PlanStepOperator(lineage.LineageMixin, BaseOperator):
    """Run one plan step: one call of one Python tool with validated, resolved arguments."""

    template_fields: Sequence[str] = ()  # plan arguments are data: never Jinja-rendered
    ui_color = "#efe6fb"
    operator_extra_links = (RunPageLink(),)  # "Claude run": the run page of the plugin

    tool: PythonTool
    step_args: dict[str, Any]
    identity: StepIdentity

    # No ``__init__`` of its own: Airflow wraps every operator class's ``__init__`` in its
    # argument handling (defaults merging, checks), so a subclass ``__init__`` doubles that work
    # for each of the thousands of tasks a plans folder compiles to. Build it with :meth:`for_step`.
    @classmethod
    def for_step(
        cls, *, tool: PythonTool, step_args: dict[str, Any], identity: StepIdentity, **kwargs: Any
    ) -> PlanStepOperator:
        """The task for one step; ``kwargs`` are ``BaseOperator``'s (task_id, retries, ...)."""
        task = cls(**kwargs)
        task.tool = tool
        task.step_args = step_args
        task.identity = identity
        return task

    def execute(self, context: Any) -> Any:
        check_compiled_replay(context, self.identity)  # a replay run runs the plan it asked for, or nothing
        output = run_step(
            self.tool, self.step_args, self.identity, context, fetch_output=output_fetcher(context["ti"]), log=self.log
        )
        if lineage.lineage_active():  # the facet's idempotency key is in the stamp run_step pushed
            stamp = context["ti"].xcom_pull(task_ids=self.task_id, key=PROVENANCE_XCOM_KEY)
            if isinstance(stamp, dict):
                lineage.stash(self, lineage.fields_from_provenance(stamp))
        return output

    # OpenLineage (``get_openlineage_facets_on_*`` from the mixin): the step's facet and its tool's assets
    def lineage_fields(self, task_instance: Any) -> dict[str, Any] | None:
        return lineage.step_fields(self.identity, try_number=getattr(task_instance, "try_number", None))

    def lineage_assets(self) -> tuple[Sequence[Any], Sequence[Any]]:
        return self.tool.inlets, self.tool.outlets
