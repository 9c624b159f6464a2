"""Smoke DAG for the e2e harness: a task that fails once then succeeds, XCom, mapping.

``flaky`` raises on its first try and succeeds on the retry (retry_delay 1 s),
writing ``$SMOKE_OUTPUT_DIR/<run>.txt``; ``consume`` pulls its XCom;
``square`` is a 2-way mapped task so the harness can see mapped instances.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, task

log = logging.getLogger(__name__)


def _flaky(**context: Any) -> dict[str, Any]:
    ti = context["ti"]
    if ti.try_number == 1:
        raise RuntimeError("SMOKE: failing the first try on purpose")
    out_dir = Path(os.environ.get("SMOKE_OUTPUT_DIR") or os.environ["AIRFLOW_HOME"])
    out_dir.mkdir(parents=True, exist_ok=True)
    safe_run = re.sub(r"[^A-Za-z0-9_.-]", "_", context["run_id"])
    (out_dir / f"{safe_run}.txt").write_text(f"flaky ok on try {ti.try_number}\n")
    log.info("SMOKE_FLAKY_OK try_number=%s", ti.try_number)
    return {"answer": 42, "try_number": ti.try_number}


def _consume(**context: Any) -> int:
    value = context["ti"].xcom_pull(task_ids="flaky")
    print(f"SMOKE_CONSUMED {value!r}")
    return int(value["answer"]) + 1


with DAG(
    dag_id="smoke_retry_xcom",
    schedule=None,
    catchup=False,
    tags=["e2e-smoke"],
    default_args={"retries": 0},
) as dag:
    flaky = PythonOperator(
        task_id="flaky",
        python_callable=_flaky,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )
    consume = PythonOperator(task_id="consume", python_callable=_consume)

    @task
    def square(x: int) -> int:
        return x * x

    flaky >> consume >> square.expand(x=[2, 3])
