"""The fault-injection suite on CeleryExecutor: the same promises, measured on two workers and a Redis broker.

Besides the step, Claude, scheduler and database faults that make sense on any executor, the
faults of a distributed deployment (``tests/faults/on_celery.py``): a whole Celery worker
SIGKILLed mid-step and after its tool committed, the Redis broker restarted with messages in it.
Rerun with ``scripts/faults.sh N --executor celery``; figures in docs/reliability.md.
"""

from __future__ import annotations

import pytest

from .harness import Environment
from .suite import run_suite

pytestmark = [pytest.mark.faults, pytest.mark.e2e]


def test_faults_on_celery_keep_effects_once_and_outputs_whole(
    celery_fault_environment: Environment, request: pytest.FixtureRequest
) -> None:
    workers = ", ".join(f"`{w}`" for w in celery_fault_environment.airflow.celery_worker_names)
    run_suite(
        celery_fault_environment,
        request.config,
        f"CeleryExecutor (workers {workers} on `default`, 2 slots each, private Redis broker, "
        "PostgreSQL result backend)",
    )
