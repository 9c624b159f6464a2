"""The Celery side of a harness deployment: settings, worker command lines, worker host names.

``AirflowInstance(executor="celery")`` holds one ``CeleryDeployment``: a private Redis broker, the
PostgreSQL metadata database as Celery's result backend, and named workers, each listening on its
own queues. Every worker gets a host name of its own (``<name>.<machine fqdn>``) through Airflow's
``hostname_callable``, so a task instance's ``hostname`` says which worker ran it although all
workers share one machine. Those names do not resolve: the api-server reads task logs from the
shared ``AIRFLOW_HOME`` (every worker writes there), so no worker serves logs (``--skip-serve-logs``).

This module is imported by Celery workers' task processes (``hostname_callable``): it imports
nothing heavy.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Environment variable a worker's processes read their host name from (see ``worker_hostname``).
WORKER_HOSTNAME_ENV = "AIRFLOW_CLAUDE_WORKER_HOSTNAME"
#: ``[core] hostname_callable`` of the workers.
HOSTNAME_CALLABLE = "tests.harness.celery.worker_hostname"
#: Prefix of a worker's component name: worker ``w1`` is the component ``worker-w1``.
WORKER_PREFIX = "worker-"
DEFAULT_WORKERS: dict[str, tuple[str, ...]] = {"w1": ("default",), "w2": ("default",)}

#: A task whose message cannot be sent (the broker is down) waits instead of failing. By default
#: Celery gives up publishing after 3 quick retries (~0.6 s) and the CeleryExecutor then reports the
#: task failed, which costs it a try (measured: 10 s of broker downtime failed 1 of 3 runs whose first
#: step had 2 retries). Publishing that never gives up is cut by Airflow's ``operation_timeout`` (1 s)
#: instead, and the executor sends again on its next heartbeats, up to ``task_publish_max_retries``
#: times: about 5 minutes of outage. Each heartbeat spends up to 1 s per unsent task meanwhile.
BROKER_OUTAGE_ENV: dict[str, str] = {
    "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": json.dumps(
        {
            "task_publish_retry_policy": {
                "max_retries": None,
                "interval_start": 0,
                "interval_step": 0.2,
                "interval_max": 0.5,
            }
        }
    ),
    "AIRFLOW__CELERY__TASK_PUBLISH_MAX_RETRIES": "300",
}

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def worker_hostname() -> str:
    """Host name of this worker's task processes: ``$AIRFLOW_CLAUDE_WORKER_HOSTNAME``, else the fqdn."""
    return os.environ.get(WORKER_HOSTNAME_ENV) or socket.getfqdn()


def result_backend_url(db_url: str) -> str:
    """Celery's ``db+postgresql://...`` result backend URL for an Airflow PostgreSQL ``sql_alchemy_conn``."""
    match = re.match(r"^postgresql(\+\w+)?://(.*)$", db_url)
    if not match:
        raise ValueError(f"executor='celery' needs a PostgreSQL db_url (postgresql+psycopg2://...), got {db_url!r}")
    return f"db+postgresql://{match.group(2)}"


@dataclass(frozen=True)
class CeleryDeployment:
    """Broker, result backend and workers of one harness deployment."""

    workers: Mapping[str, tuple[str, ...]]
    broker_port: int
    result_backend: str
    concurrency: int = 2

    @classmethod
    def build(
        cls,
        workers: Mapping[str, Sequence[str]] | None,
        broker_port: int,
        db_url: str,
        concurrency: int,
    ) -> CeleryDeployment:
        """Validate the worker map (names, at least one queue each) and derive the backend URL."""
        chosen = DEFAULT_WORKERS if workers is None else workers
        if not chosen:
            raise ValueError("celery_workers must name at least one worker")
        normalized: dict[str, tuple[str, ...]] = {}
        for name, queues in chosen.items():
            if not _NAME.match(name):
                raise ValueError(f"worker name {name!r}: use letters, digits, '_' or '-'")
            if isinstance(queues, str):
                queues = (queues,)
            if not queues or not all(q and "," not in q for q in queues):
                raise ValueError(f"worker {name!r} needs one or more queue names (no commas), got {queues!r}")
            normalized[name] = tuple(queues)
        if concurrency < 1:
            raise ValueError("celery worker concurrency must be >= 1")
        return cls(normalized, broker_port, result_backend_url(db_url), concurrency)

    @property
    def broker_url(self) -> str:
        return f"redis://127.0.0.1:{self.broker_port}/0"

    @property
    def component_names(self) -> tuple[str, ...]:
        return tuple(WORKER_PREFIX + name for name in self.workers)

    def env(self) -> dict[str, str]:
        """Settings every component shares: the executor, the broker, the result backend, broker outages."""
        return {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": self.result_backend,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
            **BROKER_OUTAGE_ENV,
        }

    def worker_name(self, component: str) -> str:
        return component.removeprefix(WORKER_PREFIX)

    def hostname_of(self, worker: str) -> str:
        """The ``hostname`` task instances run by ``worker`` record."""
        return f"{worker}.{socket.getfqdn()}"

    def worker_args(self, worker: str) -> tuple[str, ...]:
        """``airflow`` arguments that start ``worker``."""
        return (
            "celery", "worker",
            "--celery-hostname", f"{worker}@%h",
            "--queues", ",".join(self.workers[worker]),
            "--concurrency", str(self.concurrency),
            "--skip-serve-logs",
        )  # fmt: skip

    def worker_env(self, worker: str) -> dict[str, str]:
        """What a worker's environment adds to the instance's (the instance's ``extra_env`` still wins)."""
        return {
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
            WORKER_HOSTNAME_ENV: self.hostname_of(worker),
            # no stale-bundle cleanup process per worker: the harness uses a local DAG folder
            "AIRFLOW__DAG_PROCESSOR__STALE_BUNDLE_CLEANUP_INTERVAL": "0",
        }

    def says_ready(self, worker: str, log_text: str) -> bool:
        """Whether a worker's log says it consumes its queues (Celery's ``<name>@<host> ready.``)."""
        return re.search(rf"\b{re.escape(worker)}@\S+ ready\.", log_text) is not None
