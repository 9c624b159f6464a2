"""Smoke DAG for the e2e harness: quick tasks (used after fault injection) and a connection lookup."""

from __future__ import annotations

from airflow.sdk import DAG, BaseHook, task

with DAG(dag_id="smoke_noop", schedule=None, catchup=False, tags=["e2e-smoke"]) as dag:

    @task
    def noop() -> str:
        return "noop done"

    @task
    def conn_host() -> str | None:
        # the harness passes connections as AIRFLOW_CONN_* environment variables
        return BaseHook.get_connection("smoke_conn").host

    noop() >> conn_host()
