"""docker-compose.yaml cannot run here (no Docker engine); check it is shaped to run the example on Celery."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path
from typing import Any

import yaml

from airflow_claude.examples.orders import catalog

ROOT = Path(__file__).parents[2]
AIRFLOW_SERVICES = [
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
]
LONG_RUNNING = AIRFLOW_SERVICES[1:]


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def worker_queues(service: dict[str, Any]) -> set[str]:
    args = shlex.split(service["command"]) if isinstance(service["command"], str) else list(service["command"])
    assert args[:2] == ["celery", "worker"], args
    for flag in ("--queues", "-q"):
        if flag in args:
            return set(args[args.index(flag) + 1].split(","))
    return {"default"}  # Airflow's [operators] default_queue


def test_every_airflow_component_uses_the_pinned_official_image() -> None:
    services = compose()["services"]
    pinned = next(dep for dep in pyproject()["project"]["dependencies"] if dep.startswith("apache-airflow>="))
    floor = pinned.split(">=")[1].split(",")[0]
    for name in AIRFLOW_SERVICES:
        assert services[name]["image"] == f"apache/airflow:{floor}-python3.11", name


def test_every_component_runs_celery_on_redis_with_postgres_for_metadata_and_results() -> None:
    services = compose()["services"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        metadata = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert metadata.startswith("postgresql+psycopg2://") and "@postgres:5432/" in metadata, name
        broker = env["AIRFLOW__CELERY__BROKER_URL"]
        assert broker.startswith("redis://") and "@redis:6379/" in broker, name
        backend = env["AIRFLOW__CELERY__RESULT_BACKEND"]
        assert backend == "db+" + metadata.replace("postgresql+psycopg2://", "postgresql://"), name


def test_redis_and_postgres_have_healthchecks_and_every_airflow_service_waits_for_both() -> None:
    services = compose()["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["redis"]["image"].startswith("redis:")
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for name in AIRFLOW_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
    for name in LONG_RUNNING:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully", name
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_the_worker_listens_on_every_queue_the_example_tools_name_and_is_health_checked() -> None:
    worker = compose()["services"]["airflow-worker"]
    wanted = {getattr(tool, "queue", None) or "default" for _, tool in catalog.items()}
    assert wanted <= worker_queues(worker)
    check = " ".join(worker["healthcheck"]["test"])
    assert "celery --app airflow.providers.celery.executors.celery_executor.app inspect ping" in check
    assert worker["environment"]["DUMB_INIT_SETSID"] == "0"  # warm shutdown: running tasks finish


def test_dags_package_and_demo_volume_are_on_every_container_and_the_celery_extra_is_installed() -> None:
    services = compose()["services"]
    extras = pyproject()["project"]["optional-dependencies"]
    assert any(dep.replace(" ", "").startswith("celery[redis]") and "<5.7" in dep for dep in extras["celery"])
    for name in AIRFLOW_SERVICES:
        volumes = services[name]["volumes"]
        assert "./dags:/opt/airflow/dags" in volumes, name
        assert "./:/opt/airflow/airflow-claude" in volumes, name
        demo = services[name]["environment"]["AIRFLOW_CLAUDE_DEMO_DIR"]
        assert f"airflow-claude-demo:{demo}" in volumes, name  # the single-host demo tools' files
        assert f"{demo}/orders.db" in services[name]["environment"]["AIRFLOW_CONN_ORDERS_DB"], name
        requirements = services[name]["environment"]["_PIP_ADDITIONAL_REQUIREMENTS"].split()
        assert "/opt/airflow/airflow-claude[celery]" in requirements, name
    assert (ROOT / "dags" / "nightly_plans.py").exists()
    init = " ".join(services["airflow-init"]["command"])
    assert "airflow db migrate" in init and "airflow-claude" in init and "apache-airflow-providers-celery" in init


def test_components_share_the_execution_api_and_jwt_secret() -> None:
    services = compose()["services"]
    envs = [services[name]["environment"] for name in AIRFLOW_SERVICES]
    assert len({env["AIRFLOW__API_AUTH__JWT_SECRET"] for env in envs}) == 1
    assert all(
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/" for env in envs
    )
    assert services["airflow-apiserver"]["ports"] == ["8080:8080"]


def test_a_broker_down_at_send_time_is_waited_out_as_the_harness_measured() -> None:
    import json

    from tests.harness.celery import BROKER_OUTAGE_ENV

    env = compose()["x-airflow-common"]["environment"]
    for key, value in BROKER_OUTAGE_ENV.items():
        assert key in env, key
        if key.endswith("EXTRA_CELERY_CONFIG"):
            assert json.loads(env[key]) == json.loads(value)
        else:
            assert str(env[key]) == value
