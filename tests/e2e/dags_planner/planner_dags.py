"""Test DAGs: ``ClaudePlanOperator`` inside real DAG runs, against the offline Claude of the test.

- ``planner_e2e_ok``: plans a goal whose template pulls a variable and a connection password
  (both must reach Claude masked), then ``check_plan`` validates the plan it reads from XCom.
- ``planner_e2e_overloaded``: Claude answers 529 to this goal (marker ``E2E-OVERLOADED``); retries=0.
- ``planner_e2e_spend_limit``: Claude answers "spend limit reached" (marker ``E2E-SPEND-LIMIT``);
  retries=3, which the retry policy must not use.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from airflow_claude.examples.orders import catalog
from airflow_claude.operators import ClaudePlanOperator
from airflow_claude.plan import validate_plan

SECRET_GOAL = "Report revenue. Token: {{ var.value.api_secret }} pw: {{ conn.orders_api.password }}"


def _check_plan(**context: Any) -> dict[str, Any]:
    plan = context["ti"].xcom_pull(task_ids="plan")
    result = validate_plan(plan, catalog)
    if not result.ok or result.plan is None:
        raise ValueError("the plan in XCom is not valid: " + "; ".join(str(i) for i in result.issues))
    provenance = result.plan.provenance
    if provenance.created_by != "claude" or not provenance.model or not provenance.request_ids:
        raise ValueError(f"the plan has no model provenance: {provenance!r}")
    if provenance.catalog_fingerprint != catalog.fingerprint:
        raise ValueError("the plan was made against another catalog")
    return {
        "plan_id": result.plan.id,
        "plan_hash": result.plan.hash,
        "steps": [step.id for step in result.plan.steps],
        "goal": result.plan.goal,
    }


with DAG(dag_id="planner_e2e_ok", schedule=None, catchup=False, tags=["e2e"]):
    plan = ClaudePlanOperator(task_id="plan", goal=SECRET_GOAL, catalog=catalog)
    plan >> PythonOperator(task_id="check_plan", python_callable=_check_plan)

with DAG(dag_id="planner_e2e_overloaded", schedule=None, catchup=False, tags=["e2e"]):
    ClaudePlanOperator(task_id="plan", goal="E2E-OVERLOADED: report revenue.", catalog=catalog, retries=0)

with DAG(dag_id="planner_e2e_spend_limit", schedule=None, catchup=False, tags=["e2e"]):
    ClaudePlanOperator(task_id="plan", goal="E2E-SPEND-LIMIT: report revenue.", catalog=catalog, retries=3)
