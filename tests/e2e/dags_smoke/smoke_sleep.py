"""Smoke DAG for the e2e harness: a long-running task, for fault-injection tests."""

from __future__ import annotations

import time

from airflow.sdk import DAG, task

with DAG(dag_id="smoke_sleep", schedule=None, catchup=False, tags=["e2e-smoke"]) as dag:

    @task
    def sleep_long() -> None:
        print("SMOKE_SLEEP started")
        time.sleep(300)

    sleep_long()
