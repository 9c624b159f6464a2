"""docker-compose.yaml cannot run here (no Docker engine); check it is shaped to run the example."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[2]
AIRFLOW_SERVICES = ["airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor"]


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def test_every_airflow_component_uses_the_pinned_official_image() -> None:
    services = compose()["services"]
    pinned = next(
        dep
        for dep in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        if dep.startswith("apache-airflow>=")
    )
    floor = pinned.split(">=")[1].split(",")[0]
    for name in [*AIRFLOW_SERVICES, "airflow-triggerer"]:
        assert services[name]["image"] == f"apache/airflow:{floor}-python3.11", name


def test_postgres_is_the_metadata_db_and_is_waited_for() -> None:
    services = compose()["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert "healthcheck" in services["postgres"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in AIRFLOW_SERVICES[1:]:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_dags_and_package_are_mounted_and_installed() -> None:
    services = compose()["services"]
    for name in AIRFLOW_SERVICES:
        volumes = services[name]["volumes"]
        assert "./dags:/opt/airflow/dags" in volumes
        assert "./:/opt/airflow/airflow-claude" in volumes
        requirements = services[name]["environment"]["_PIP_ADDITIONAL_REQUIREMENTS"]
        assert "-e /opt/airflow/airflow-claude" in requirements
    assert (ROOT / "dags" / "nightly_plans.py").exists()
    init = services["airflow-init"]["command"]
    assert "airflow db migrate" in " ".join(init) and "airflow-claude" in " ".join(init)


def test_components_share_the_execution_api_and_jwt_secret() -> None:
    services = compose()["services"]
    envs = [services[name]["environment"] for name in AIRFLOW_SERVICES]
    assert len({env["AIRFLOW__API_AUTH__JWT_SECRET"] for env in envs}) == 1
    assert all(
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/" for env in envs
    )
    assert services["airflow-apiserver"]["ports"] == ["8080:8080"]
