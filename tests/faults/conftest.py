"""Fixtures of the fault-injection suite: fresh PostgreSQL databases, the offline Claude, a real Airflow.

Two deployments, one test module each: LocalExecutor (``test_faults.py``) and CeleryExecutor with
two workers and a private Redis broker (``test_faults_celery.py``). Size: ``--runs-per-fault N``
(or ``FAULTS_RUNS_PER_FAULT``); CI runs 1. ``--faults-table FILE`` writes the figures as a
markdown table (``scripts/faults.sh`` prints it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from . import effects
from .faults import CELERY
from .harness import PG, Claude, Environment, airflow_env

DAGS = Path(__file__).parent / "dags"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("faults", "fault-injection suite (tests/faults)")
    group.addoption(
        "--runs-per-fault",
        type=int,
        default=int(os.environ.get("FAULTS_RUNS_PER_FAULT", "1")),
        help="DAG runs per fault kind (default 1, or FAULTS_RUNS_PER_FAULT)",
    )
    group.addoption(
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this fault (repeatable; names as in the table, e.g. crash_after_commit)",
    )
    group.addoption(
        "--every-fault",
        action="store_true",
        default=os.environ.get("FAULTS_EVERY_FAULT") == "1",
        help="measure every fault of the executor (scripts/faults.sh); else the CI set (faults.ci_faults)",
    )
    group.addoption(
        "--faults-table",
        default=os.environ.get("FAULTS_TABLE"),
        help="write the figures (markdown) to this file",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: the fault-injection suite (a real Airflow on PostgreSQL)")
    config.addinivalue_line("markers", "e2e: runs a real Airflow (scheduler, dag-processor, api-server)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The suite runs as one test: CI size about 7 minutes on a busy 2-CPU machine, bigger ones longer."""
    runs = config.getoption("--runs-per-fault")
    for item in items:
        if item.get_closest_marker("faults"):
            item.add_marker(pytest.mark.timeout(900 + 600 * max(0, runs - 1)))


def _postgres_available() -> bool:
    try:
        done = subprocess.run([*PG, "-tAc", "select 1"], capture_output=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _psql(sql: str) -> None:
    subprocess.run([*PG, "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True, timeout=60)


@contextmanager
def _databases(prefix: str) -> Iterator[tuple[str, str]]:
    """A fresh Airflow metadata database and a separate effects database; both dropped at the end."""
    if not _postgres_available():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432 (user postgres)")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    airflow_db, effects_db = name, f"{name}_fx"
    for db in (airflow_db, effects_db):
        _psql(f"CREATE DATABASE {db}")
    try:
        effects_url = f"postgresql://postgres@127.0.0.1:5432/{effects_db}"
        effects.create_schema(effects_url)
        yield airflow_db, effects_url
    finally:
        for db in (airflow_db, effects_db):
            _psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


# module scope: the LocalExecutor and CeleryExecutor suites each stop their Airflow before the next starts


@pytest.fixture(scope="module")
def fault_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    from tests.harness.airflow_instance import AirflowInstance

    base = tmp_path_factory.mktemp("faults")
    with _databases("af_faults") as (airflow_db, effects_url), Claude() as claude:
        instance = AirflowInstance(
            home=base / "home",
            dags_folder=DAGS,
            db_url=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{airflow_db}",
            extra_env=airflow_env(claude.url, effects_url),
            with_triggerer=True,  # run-time plans' steps wait for their producers in the triggerer
            startup_timeout=180,
        )
        instance.start()
        try:
            yield Environment(instance, claude, airflow_db, effects_url)
        finally:
            instance.stop()


@pytest.fixture(scope="module")
def celery_fault_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    """The same suite's Airflow on CeleryExecutor: two workers on ``default`` and a private Redis broker."""
    pytest.importorskip("airflow.providers.celery", reason="the celery extra is not installed")
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server binary (the harness runs a private Redis broker)")
    from tests.harness.airflow_instance import AirflowInstance

    from .on_celery import CONCURRENCY, WORKERS, celery_env, remember_workers

    base = tmp_path_factory.mktemp("faults_celery")
    with _databases("af_faults_celery") as (airflow_db, effects_url), Claude() as claude:
        instance = AirflowInstance(
            home=base / "home",
            dags_folder=DAGS,
            db_url=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{airflow_db}",
            extra_env={**airflow_env(claude.url, effects_url), **celery_env()},
            with_triggerer=True,
            startup_timeout=240,
            executor="celery",
            celery_workers=WORKERS,
            celery_concurrency=CONCURRENCY,
        )
        instance.start()
        try:
            env = Environment(instance, claude, airflow_db, effects_url, executor=CELERY)
            remember_workers(env)
            yield env
        finally:
            instance.stop()
