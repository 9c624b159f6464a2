"""Operator-backed tools: the step *is* the catalog's operator, with plan arguments kept as data.

Plan arguments that land in a template field are wrapped so Jinja never sees them
(``LiteralValue``), references are resolved from upstream XCom when the operator renders
(``StepRefValue``), and ``pre_execute``/``post_execute`` hooks log the step's records and
stamp its provenance, exactly as for Python tools.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from airflow.sdk.definitions._internal.templater import LiteralValue

from airflow_claude.catalog.tool import OperatorTool
from airflow_claude.fingerprint import sha256_of
from airflow_claude.observability import lineage
from airflow_claude.observability.records import emit
from airflow_claude.observability.redaction import redact_value
from airflow_claude.plan.model import Step
from airflow_claude.plan.refs import contains_ref
from airflow_claude.runtime.provenance import (
    PROVENANCE_XCOM_KEY,
    StepIdentity,
    idempotency_key,
    provenance_record,
)
from airflow_claude.runtime.replay import check_compiled_replay
from airflow_claude.runtime.resolve import RunScope, StepRefValue, run_refs_used
from airflow_claude.ui.links import RunPageLink


def build_operator_task(tool: OperatorTool, step: Step, identity: StepIdentity, **task_kwargs: Any) -> Any:
    """Instantiate the tool's operator for one step; the catalog's fixed parameters come first."""
    assert tool.operator_class is not None
    template_fields = set(getattr(tool.operator_class, "template_fields", ()))
    kwargs: dict[str, Any] = {}
    for name, value in step.args.items():
        if contains_ref(value):
            kwargs[name] = StepRefValue(value)
        elif name in template_fields:
            kwargs[name] = LiteralValue(value)
        else:
            kwargs[name] = value  # not a template field: Airflow never renders it
    hooks = _StepHooks(identity, tuple(step.args), {k: v for k, v in step.args.items() if contains_ref(v)})
    task = tool.operator_class(
        **dict(tool.fixed), **kwargs, pre_execute=hooks.before, post_execute=hooks.after, **task_kwargs
    )
    for method in _OL_METHODS:  # instance attributes: the operator's class is the DAG author's, not ours
        setattr(task, method, _OperatorLineage(method, identity, tool, task))
    _add_run_page_link(task)
    return task


def _add_run_page_link(task: Any) -> None:
    """The ``Claude run`` extra link beside the operator's own; an instance attribute, as above."""
    own = tuple(task.operator_extra_links)
    if any(isinstance(link, RunPageLink) for link in own):
        return
    try:
        task.operator_extra_links = (*own, RunPageLink())
    except AttributeError:  # the operator's class computes its links in a read-only property
        task.log.debug("%s keeps its own extra links only", type(task).__name__)


_OL_METHODS = (
    "get_openlineage_facets_on_start",
    "get_openlineage_facets_on_complete",
    "get_openlineage_facets_on_failure",
)


class _OperatorLineage:
    """An operator step's OpenLineage method: the step's facet and its tool's assets.

    When the operator's class has its own method (a SQL operator's tables...), its result is
    kept and ours is added to it.
    """

    def __init__(self, method: str, identity: StepIdentity, tool: OperatorTool, task: Any) -> None:
        self.method = method
        self.identity = identity
        self.tool = tool
        self.built = weakref.ref(task)  # the start event has no task instance: the task as built

    def __call__(self, task_instance: Any = None) -> Any:
        task = getattr(task_instance, "task", None) or self.built()
        theirs = None
        own = getattr(self.tool.operator_class, self.method, None)
        if callable(own) and task is not None:
            try:
                theirs = own(task) if self.method.endswith("_start") else own(task, task_instance)
            except Exception:  # the operator's own lineage failing must not lose the step's
                task.log.debug("%s.%s failed", type(task).__name__, self.method, exc_info=True)
        fields = (lineage.stashed(task) if task is not None else None) or lineage.step_fields(
            self.identity, try_number=getattr(task_instance, "try_number", None)
        )
        return lineage.merge_lineage(lineage.operator_lineage(fields, self.tool.inlets, self.tool.outlets), theirs)


class _StepHooks:
    """Records and provenance for an operator step, computed from its rendered arguments."""

    def __init__(self, identity: StepIdentity, arg_names: tuple[str, ...], ref_args: dict[str, Any]) -> None:
        self.identity = identity
        self.arg_names = arg_names
        self.ref_args = ref_args  # the arguments holding references, as the plan wrote them
        self.started = 0.0

    def _args(self, context: Any) -> dict[str, Any]:
        task = context["ti"].task
        return {name: getattr(task, name, None) for name in self.arg_names}

    def _base(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        return {"dag_id": ti.dag_id, "run_id": ti.run_id, "plan_id": self.identity.plan_id, "step_id": ti.task_id}

    def before(self, context: Any) -> None:
        check_compiled_replay(context, self.identity)  # a replay run runs the plan it asked for, or nothing
        self.started = time.monotonic()
        ti = context["ti"]
        key = idempotency_key(ti.dag_id, ti.run_id, ti.task_id, self._args(context))
        emit(
            ti.task.log,
            "step.started",
            **self._base(context),
            tool=self.identity.tool,
            tool_version=self.identity.tool_version,
            try_number=ti.try_number,
            idempotency_key=key,
        )

    def after(self, context: Any, result: Any = None) -> None:
        ti = context["ti"]
        args = self._args(context)
        key = idempotency_key(ti.dag_id, ti.run_id, ti.task_id, args)
        stamp = provenance_record(
            self.identity,
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            try_number=ti.try_number,
            key=key,
            args_fingerprint=sha256_of(args),
            run_values=redact_value(run_refs_used(self.ref_args, RunScope.of(context))),
        )
        ti.xcom_push(key=PROVENANCE_XCOM_KEY, value=stamp)
        lineage.stash(ti.task, lineage.fields_from_provenance(stamp))  # for the OpenLineage listener
        emit(
            ti.task.log,
            "step.finished",
            **self._base(context),
            tool=self.identity.tool,
            try_number=ti.try_number,
            duration_s=round(time.monotonic() - self.started, 6),
            idempotency_key=key,
        )
