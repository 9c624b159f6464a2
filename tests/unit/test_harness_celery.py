"""The Celery parts of the harness that need no Airflow: settings, the private Redis, throw-away databases."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
from pathlib import Path

import psycopg2
import pytest

from tests.harness.airflow_instance import AirflowInstance, AirflowInstanceError
from tests.harness.celery import BROKER_OUTAGE_ENV, WORKER_HOSTNAME_ENV, result_backend_url, worker_hostname
from tests.harness.postgres import ADMIN_DSN, fresh_database, postgres_available
from tests.harness.redis_server import redis_ping

PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/some_db"


def _celery(tmp_path: Path, **kwargs) -> AirflowInstance:
    home, dags = tmp_path / "home", tmp_path / "dags"
    return AirflowInstance(home=home, dags_folder=dags, db_url=PG_URL, executor="celery", **kwargs)


def test_local_instance_is_unchanged(tmp_path):
    af = AirflowInstance(home=tmp_path / "home", dags_folder=tmp_path / "dags")
    assert af.executor == "local" and af.celery is None
    assert af.component_names == ("dag-processor", "scheduler", "api-server")
    assert af.env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert not any(key.startswith("AIRFLOW__CELERY__") for key in af.env)
    assert af.celery_worker_names == ()
    with pytest.raises(AirflowInstanceError):
        _ = af.broker_url
    with pytest.raises(ValueError, match="unknown component"):
        af.start_component("redis")


@pytest.mark.skipif(not shutil.which("redis-server"), reason="no redis-server")
def test_celery_settings_components_and_worker_commands(tmp_path):
    af = _celery(tmp_path, with_triggerer=True, celery_workers={"w1": ("default",), "gpu": ("gpu", "default")})
    assert af.component_names == (
        "redis", "dag-processor", "scheduler", "api-server", "triggerer", "worker-w1", "worker-gpu",
    )  # fmt: skip
    assert af.celery_worker_names == ("w1", "gpu")
    port = af.celery.broker_port
    assert af.broker_url == f"redis://127.0.0.1:{port}/0" and port != 6379
    env = af.env
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == af.broker_url
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://postgres@127.0.0.1:5432/some_db"
    assert WORKER_HOSTNAME_ENV not in env  # only workers get a host name of their own
    assert BROKER_OUTAGE_ENV.items() <= env.items()
    assert json.loads(env["AIRFLOW__CELERY__EXTRA_CELERY_CONFIG"])["task_publish_retry_policy"]["max_retries"] is None

    command = af._component_command("worker-gpu")
    assert command[1:] == [
        "celery", "worker", "--celery-hostname", "gpu@%h", "--queues", "gpu,default", "--concurrency", "2",
        "--skip-serve-logs",
    ]  # fmt: skip
    worker_env = af._component_env("worker-gpu")
    assert worker_env[WORKER_HOSTNAME_ENV] == af.worker_hostname("gpu") != af.worker_hostname("w1")
    assert worker_env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "tests.harness.celery.worker_hostname"
    assert af._component_command("redis")[1:3] == ["--port", str(port)]
    with pytest.raises(ValueError, match="no Celery worker"):
        af.worker_hostname("w9")


@pytest.mark.skipif(not shutil.which("redis-server"), reason="no redis-server")
def test_extra_env_wins_over_the_celery_settings(tmp_path):
    af = _celery(
        tmp_path,
        extra_env={
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor,CeleryExecutor",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "x.y",
        },
    )
    assert af.env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor,CeleryExecutor"
    assert af._component_env("worker-w1")["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "x.y"


def test_bad_celery_arguments(tmp_path):
    with pytest.raises(ValueError, match="PostgreSQL db_url"):
        AirflowInstance(home=tmp_path / "h", dags_folder=tmp_path / "d", executor="celery")
    with pytest.raises(ValueError, match="PostgreSQL db_url"):
        AirflowInstance(home=tmp_path / "h", dags_folder=tmp_path / "d", db_url="sqlite:///x.db", executor="celery")
    with pytest.raises(ValueError, match="executor must be one of"):
        AirflowInstance(home=tmp_path / "h", dags_folder=tmp_path / "d", executor="kubernetes")
    with pytest.raises(ValueError, match="at least one worker"):
        _celery(tmp_path, celery_workers={})
    with pytest.raises(ValueError, match="queue"):
        _celery(tmp_path, celery_workers={"w1": ()})
    with pytest.raises(ValueError, match="worker name"):
        _celery(tmp_path, celery_workers={"w 1": ("default",)})
    assert result_backend_url("postgresql://u@h:1/d") == "db+postgresql://u@h:1/d"


def test_worker_hostname_callable(monkeypatch):
    monkeypatch.setenv(WORKER_HOSTNAME_ENV, "w7.example")
    assert worker_hostname() == "w7.example"
    monkeypatch.delenv(WORKER_HOSTNAME_ENV)
    assert worker_hostname()  # the machine's fqdn


@pytest.mark.skipif(not shutil.which("redis-server"), reason="no redis-server")
def test_private_redis_start_kill_restart_stop(tmp_path):
    af = _celery(tmp_path)
    port = af.celery.broker_port
    assert not redis_ping(port)
    try:
        pid = af.start_component("redis", timeout=30)
        assert af.is_running("redis") and af.pid_of("redis") == pid
        assert redis_ping(port)
        with pytest.raises(AirflowInstanceError, match="already running"):
            af.start_component("redis")

        new_pid = af.restart_component("redis", sig=signal.SIGKILL, timeout=30)  # a broker crash
        assert new_pid != pid and redis_ping(port)  # back on the same port: the broker URL stays valid

        af.stop_component("redis")
        assert not af.is_running("redis") and not redis_ping(port)
        af.start_component("redis", timeout=30)
        assert redis_ping(port)
        assert "Ready to accept connections" in af.log_path("redis").read_text()
    finally:
        af.stop()
    assert not redis_ping(port)
    assert af.instance_pids() == []


@pytest.mark.skipif(not postgres_available(), reason="no PostgreSQL on 127.0.0.1:5432")
def test_fresh_database_is_created_then_dropped_with_a_session_still_open():
    with fresh_database("harness unit") as url:
        name = url.rsplit("/", 1)[1]
        assert url.startswith("postgresql+psycopg2://postgres@127.0.0.1:5432/harness_unit_")
        conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=name)
        with conn.cursor() as cur:
            cur.execute("create table t (x int)")
        conn.commit()
    # the session above was still open: the drop ended it (WITH (FORCE))
    with contextlib.suppress(psycopg2.Error):
        conn.close()
    with contextlib.closing(psycopg2.connect(ADMIN_DSN)) as admin, admin.cursor() as cur:
        cur.execute("select count(*) from pg_database where datname = %s", (name,))
        assert cur.fetchone() == (0,)
