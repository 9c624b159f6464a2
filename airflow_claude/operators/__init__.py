"""Every operator of the package, in one place.

DAG authors rarely build these by hand: ``load_plan_dags`` and ``claude_automation_group`` do.
They are listed here (and in ``get_provider_info``) so they are easy to find, subclass and test.
Compiled plans: ``PlanStepOperator`` (one step), ``CompensateStepOperator`` and
``SagaOutcomeOperator`` (the saga), ``InvalidPlanOperator`` (a plan that failed validation).
Automations: one module per task of a round (plan, approve, commit, steps, review), the saga's
``UndoListOperator`` and ``UndoStepOperator``, ``ReportOperator``, and ``RouteTicketsOperator``
(hands a queue's steps to that queue's mapped task when tools name queues).
"""

from airflow_claude.automation.approval import PlanApprovalOperator
from airflow_claude.automation.commit import CommitPlanOperator
from airflow_claude.automation.planning import PlanRoundOperator
from airflow_claude.automation.report import ReportOperator
from airflow_claude.automation.review import ReviewOperator
from airflow_claude.automation.routes import RouteTicketsOperator
from airflow_claude.automation.saga import UndoListOperator, UndoStepOperator
from airflow_claude.automation.steps import RunPlanStepOperator
from airflow_claude.runtime.compensate import CompensateStepOperator, SagaOutcomeOperator
from airflow_claude.runtime.invalid import InvalidPlanOperator
from airflow_claude.runtime.step import PlanStepOperator

__all__ = [
    "CommitPlanOperator",
    "CompensateStepOperator",
    "InvalidPlanOperator",
    "PlanApprovalOperator",
    "PlanRoundOperator",
    "PlanStepOperator",
    "ReportOperator",
    "ReviewOperator",
    "RouteTicketsOperator",
    "RunPlanStepOperator",
    "SagaOutcomeOperator",
    "UndoListOperator",
    "UndoStepOperator",
]
