"""Smoke DAG for the e2e harness: a human-in-the-loop task answered through the REST API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG


def _after(**context: Any) -> list[str]:
    answer = context["ti"].xcom_pull(task_ids="ask")
    print(f"SMOKE_HITL_ANSWER {answer!r}")
    return list(answer["chosen_options"])


with DAG(dag_id="smoke_hitl", schedule=None, catchup=False, tags=["e2e-smoke"]) as dag:
    # retries: Airflow 3.3.2 may fail an answer that arrives too early; the request is then asked again
    ask = HITLOperator(
        task_id="ask", subject="Proceed?", options=["yes", "no"], retries=2, retry_delay=timedelta(seconds=2)
    )
    after = PythonOperator(task_id="after", python_callable=_after)
    ask >> after
