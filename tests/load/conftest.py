"""Fixtures of the load suite: fresh PostgreSQL databases, the offline Claude, a StatsD receiver, a Celery Airflow.

Size: ``--load-runs N`` (or ``LOAD_RUNS``) runs of the 20-step plan in all, triggered at once, of
which ``--load-automation-runs M`` (or ``LOAD_AUTOMATION_RUNS``; default N // 5, at least 2) are
automation runs and the rest compiled runs; ``--load-parallelism P`` (``LOAD_PARALLELISM``, default
8): task slots in all, P // 2 per Celery worker. CI runs 4 (2 compiled + 2 automation).
``--load-table FILE`` (``LOAD_TABLE``) writes the figures (``scripts/load.sh`` prints them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from . import deployment, effects
from .deployment import Size
from .statsd_receiver import StatsdReceiver


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("load", "load on a Celery deployment (tests/load)")
    group.addoption(
        "--load-runs", type=int, default=int(os.environ.get("LOAD_RUNS", "4")), help="runs in all (default 4: CI)"
    )
    group.addoption(
        "--load-automation-runs",
        type=int,
        default=int(os.environ["LOAD_AUTOMATION_RUNS"]) if os.environ.get("LOAD_AUTOMATION_RUNS") else None,
        help="automation runs (default: --load-runs // 5, at least 2)",
    )
    group.addoption(
        "--load-parallelism",
        type=int,
        default=int(os.environ.get("LOAD_PARALLELISM", "8")),
        help="[core] parallelism; each of the two Celery workers gets half as its concurrency",
    )
    group.addoption("--load-table", default=os.environ.get("LOAD_TABLE"), help="write the figures to this file")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "load: concurrent runs on a Celery deployment (tests/load)")
    config.addinivalue_line("markers", "e2e: runs a real Airflow (scheduler, dag-processor, api-server)")


def size_of(config: pytest.Config) -> Size:
    runs = int(config.getoption("--load-runs"))
    automation = config.getoption("--load-automation-runs")
    parallelism = int(config.getoption("--load-parallelism"))
    automation = int(automation) if automation is not None else max(2, runs // 5)
    automation = min(automation, runs - 1)  # at least one compiled run
    return Size(
        compiled_runs=runs - automation,
        automation_runs=automation,
        parallelism=parallelism,
        worker_concurrency=max(1, parallelism // 2),
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """CI size (4 runs) takes a few minutes on an idle 2-core machine; allow 20 s of CPU-bound work a run more."""
    size = size_of(config)
    for item in items:
        if item.get_closest_marker("load"):
            item.add_marker(pytest.mark.timeout(900 + 40 * size.runs))


@dataclass
class LoadEnvironment:
    airflow: object  # tests.harness.airflow_instance.AirflowInstance
    statsd: StatsdReceiver
    size: Size
    airflow_db_url: str
    effects_url: str


@pytest.fixture(scope="session")
def load_environment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoadEnvironment]:
    from tests.harness.airflow_instance import AirflowInstance
    from tests.harness.postgres import fresh_database, postgres_available

    if not postgres_available():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432 (user postgres)")
    size = size_of(request.config)
    base = tmp_path_factory.mktemp("load")
    dags = deployment.write_dag_folder(base / "dags")
    with (
        fresh_database("af_load") as airflow_db_url,
        fresh_database("af_load_fx") as effects_db_url,
        deployment.claude() as claude,
        StatsdReceiver() as statsd,
    ):
        effects_url = effects_db_url.replace("postgresql+psycopg2://", "postgresql://")
        effects.create_schema(effects_url)
        instance = AirflowInstance(
            home=base / "home",
            dags_folder=dags,
            db_url=airflow_db_url,
            executor="celery",
            celery_workers={"w1": ("default",), "w2": ("default",)},
            celery_concurrency=size.worker_concurrency,
            with_triggerer=True,  # run-time steps wait for their producers in the triggerer
            extra_env={**deployment.airflow_env(size, claude.url, effects_url), **statsd.airflow_env()},
            startup_timeout=240,
        )
        instance.start()
        try:
            yield LoadEnvironment(instance, statsd, size, airflow_db_url, effects_url)
        finally:
            instance.stop()
