"""Run a real, multi-process Airflow 3 instance for end-to-end tests and demos.

``AirflowInstance`` starts the separate Airflow components (``dag-processor``,
``scheduler``, ``api-server`` and optionally ``triggerer``) as background
processes, each in its own session/process group, with an isolated
``AIRFLOW_HOME``.  It also carries a small REST client for the public API
(``/api/v2``) with the helpers end-to-end tests need: trigger a run, wait for
it, read task instances, XComs and logs, answer human-in-the-loop tasks,
force a re-parse.

With ``executor="celery"`` it runs the CeleryExecutor instead of the LocalExecutor: a private
``redis-server`` broker (component ``"redis"``), the PostgreSQL metadata database as Celery's result
backend, and named workers listening on their own queues (components ``"worker-<name>"``); see
``celery`` and ``redis_server``, and ``postgres.fresh_database`` for a throw-away database.

The parts, one module each: ``processes`` (process groups, /proc, signals), ``rest``
(the REST client), ``hitl`` (answering human-in-the-loop tasks around an Airflow 3.3.2
race), ``errors``; this module supervises the components and is the command line.
The harness lives under ``tests/`` because it is development tooling, not part of the
shipped package: import it with the checkout root on ``sys.path``.

Typical use::

    with AirflowInstance(home=tmp / "home", dags_folder=tmp / "dags") as af:
        af.wait_for_dag("my_dag")
        run_id = af.trigger("my_dag")
        assert af.wait_for_run("my_dag", run_id, timeout=120) == "success"

Command line, from the checkout root::

    python -m tests.harness.airflow_instance --home DIR --dags DIR [--port N]

Processes are only ever stopped by the process-group id of a component this
module started, or by pid after identifying them as belonging to this instance
(same session as a component, a per-instance ``AIRFLOW_CLAUDE_INSTANCE_ID``
environment marker, or a descendant of either), never by process name.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from .celery import CeleryDeployment
from .errors import AirflowApiError, AirflowInstanceError
from .hitl import HitlClient
from .processes import (
    Component,
    all_pids,
    exit_cleanly_on_sigterm,
    free_port,
    group_alive,
    kill,
    killpg,
    pid_alive,
    proc_stat,
    tail_of,
)
from .redis_server import redis_command, redis_ping, redis_server_binary
from .rest import format_log_content

__all__ = [
    "COMPONENTS",
    "AirflowApiError",
    "AirflowInstance",
    "AirflowInstanceError",
    "exit_cleanly_on_sigterm",
    "format_log_content",
    "free_port",
    "main",
]

#: Component names accepted by ``restart_component``/``pid_of`` and friends; a Celery instance adds
#: ``"redis"`` and one ``"worker-<name>"`` per Celery worker.
COMPONENTS: tuple[str, ...] = ("dag-processor", "scheduler", "api-server", "triggerer")
REDIS = "redis"
EXECUTORS: tuple[str, ...] = ("local", "celery")

#: Environment variable put into every child's environment; helps find processes
#: of one instance that left the component's session (e.g. ``setsid`` children).
INSTANCE_MARKER_ENV = "AIRFLOW_CLAUDE_INSTANCE_ID"

_SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
# Stop order: nothing new gets scheduled first, the api-server goes last so that
# task processes still finishing can report their state through the execution API.
_STOP_ORDER: tuple[str, ...] = ("scheduler", "triggerer", "dag-processor", "api-server")


def _parse_ts(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _is_inherited_airflow_setting(key: str) -> bool:
    return key in ("AIRFLOW_HOME", "AIRFLOW_CONFIG", "VIRTUAL_ENV", INSTANCE_MARKER_ENV) or key.startswith(
        ("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW_CTX_")
    )


def _source_root() -> Path | None:
    """The checkout this harness lives in (``tests/harness/`` -> root), if it holds ``airflow_claude``.

    Put on the components' PYTHONPATH so DAG files import the checkout's ``airflow_claude``.
    """
    root = Path(__file__).resolve().parents[2]
    return root if (root / "airflow_claude" / "__init__.py").exists() else None


class AirflowInstance(HitlClient):
    """A real Airflow 3 deployment (separate processes) on this machine.

    :param home: ``AIRFLOW_HOME``; created if missing. Holds the SQLite DB (unless
        ``db_url`` is given), ``airflow.cfg``, task logs and ``component_logs/``.
    :param dags_folder: folder the dag-processor parses (the ``dags-folder`` bundle).
    :param db_url: SQLAlchemy URL of the metadata DB, e.g.
        ``postgresql+psycopg2://postgres@127.0.0.1:5432/mydb`` (needs
        ``apache-airflow-providers-postgres``). Defaults to SQLite in ``home``.
    :param extra_env: extra/overriding environment for every component, e.g.
        ``AIRFLOW_CONN_*`` connections, ``AIRFLOW_VAR_*`` variables or any
        ``AIRFLOW__SECTION__KEY`` setting. Applied last, so it wins.
    :param port: api-server port; a free one is chosen when None.
    :param with_triggerer: also run a triggerer (needed for deferrable operators).
    :param startup_timeout: seconds ``start()`` waits for everything to be healthy.
    :param executor: ``"local"`` (LocalExecutor, the default) or ``"celery"``: CeleryExecutor with a
        private ``redis-server`` broker (component ``"redis"``), the PostgreSQL ``db_url`` as result
        backend (required) and the workers of ``celery_workers`` (components ``"worker-<name>"``).
    :param celery_workers: worker name -> the queues it listens on; default two workers ``w1`` and
        ``w2`` on ``default``.
    :param celery_concurrency: task slots of each Celery worker (``--concurrency``).
    :param redis_server: path of the ``redis-server`` binary; found on PATH when None.
    """

    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        db_url: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        port: int | None = None,
        with_triggerer: bool = False,
        startup_timeout: float = 120.0,
        executor: str = "local",
        celery_workers: Mapping[str, Sequence[str]] | None = None,
        celery_concurrency: int = 2,
        redis_server: str | None = None,
    ) -> None:
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
        self.home = Path(home).absolute()
        self.dags_folder = Path(dags_folder).absolute()
        self.db_url = db_url or f"sqlite:///{self.home / 'airflow.db'}"
        self.extra_env: dict[str, str] = dict(extra_env or {})
        self.port = port or free_port()
        self.with_triggerer = with_triggerer
        self.startup_timeout = startup_timeout
        self.instance_id = uuid.uuid4().hex
        self.bin_dir = Path(sys.executable).parent
        self.component_log_dir = self.home / "component_logs"
        # Secrets shared by every component; persisted so a later instance on the
        # same home (and same DB) can still decrypt connections and verify tokens.
        self._secrets = self._load_or_create_secrets()
        self._components: dict[str, Component] = {}
        # pids (== session ids) of component leaders whose sessions may still hold processes
        self._sessions: set[int] = set()
        self._migrated = False
        self._client: httpx.Client | None = None
        self._token: str | None = None
        self._atexit_registered = False
        #: seconds taken by ``migrate`` and by ``start`` (processes up to healthy), once known
        self.timings: dict[str, float] = {}
        self.executor = executor
        #: the Celery broker, backend and workers (None on the LocalExecutor)
        self.celery: CeleryDeployment | None = None
        self._redis_binary: str | None = None
        if executor == "celery":
            if db_url is None:
                raise ValueError("executor='celery' needs a PostgreSQL db_url (see tests/harness/postgres.py)")
            self.celery = CeleryDeployment.build(celery_workers, free_port(), db_url, celery_concurrency)
            self._redis_binary = redis_server_binary(redis_server)
        # per component: size of its log file when it was last started (its readiness is read after it)
        self._log_offsets: dict[str, int] = {}

    # ------------------------------------------------------------------ config

    @staticmethod
    def connection_env(conn_id: str, conn: str | Mapping[str, Any]) -> dict[str, str]:
        """``{"AIRFLOW_CONN_<ID>": ...}`` for ``extra_env``; ``conn`` is a URI or a JSON-able dict.

        Example: ``connection_env("my_pg", {"conn_type": "postgres", "host": "127.0.0.1"})``.
        """
        value = conn if isinstance(conn, str) else json.dumps(dict(conn))
        return {f"AIRFLOW_CONN_{conn_id.upper()}": value}

    @property
    def host(self) -> str:
        """Interface the api-server listens on."""
        return "127.0.0.1"

    @property
    def base_url(self) -> str:
        """Root URL of the api-server (also the UI), without trailing slash."""
        return f"http://{self.host}:{self.port}"

    @property
    def ui_url(self) -> str:
        """URL to open in a browser."""
        return f"{self.base_url}/"

    @property
    def api_url(self) -> str:
        """Base URL of the public REST API."""
        return f"{self.base_url}/api/v2"

    @property
    def execution_api_url(self) -> str:
        """URL task processes use to talk to the api-server."""
        return f"{self.base_url}/execution/"

    @property
    def broker_url(self) -> str:
        """The Celery broker (the private Redis) of a Celery instance."""
        return self._require_celery().broker_url

    @property
    def celery_worker_names(self) -> tuple[str, ...]:
        """Names of the Celery workers (``()`` on the LocalExecutor); worker ``w1`` is component ``worker-w1``."""
        return tuple(self.celery.workers) if self.celery else ()

    def worker_hostname(self, worker: str) -> str:
        """The ``hostname`` of the task instances Celery worker ``worker`` ran."""
        celery = self._require_celery()
        if worker not in celery.workers:
            raise ValueError(f"no Celery worker {worker!r}; workers: {sorted(celery.workers)}")
        return celery.hostname_of(worker)

    def _require_celery(self) -> CeleryDeployment:
        if self.celery is None:
            raise AirflowInstanceError("not a Celery instance (executor='celery')")
        return self.celery

    @property
    def all_admins(self) -> bool:
        """Whether the simple auth manager treats every visitor as admin (no login)."""
        value = self.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
        return value.strip().lower() in ("true", "1", "t", "yes")

    @property
    def admin_password_file(self) -> Path:
        """File where the simple auth manager writes generated passwords.

        Only used when ``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS`` is False
        (the default here is True, and then no login is needed at all).
        """
        configured = self.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
        return Path(configured) if configured else self.home / "simple_auth_manager_passwords.json.generated"

    def admin_credentials(self) -> dict[str, str]:
        """Return ``{username: password}`` from the generated password file (may be empty)."""
        try:
            data = json.loads(self.admin_password_file.read_text() or "{}")
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()}

    def _login(self, client: httpx.Client) -> httpx.Response:
        """The simple auth manager's token: free when everyone is admin, else the generated password."""
        if self.all_admins:
            return client.get("/auth/token")
        creds = self.admin_credentials()
        users = self.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
        username = users.split(",")[0].split(":")[0].strip()
        if username not in creds:
            raise AirflowInstanceError(f"no password for {username!r} in {self.admin_password_file}")
        return client.post("/auth/token", json={"username": username, "password": creds[username]})

    def _load_or_create_secrets(self) -> dict[str, str]:
        path = self.home / ".airflow_instance_secrets.json"
        try:
            loaded = json.loads(path.read_text())
            if isinstance(loaded, dict) and {"fernet_key", "jwt_secret", "api_secret_key"} <= set(loaded):
                return {str(k): str(v) for k, v in loaded.items()}
        except (OSError, ValueError):
            pass
        values = {
            "fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "jwt_secret": secrets.token_hex(32),
            "api_secret_key": secrets.token_hex(32),
        }
        self.home.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
        path.chmod(0o600)
        return values

    @property
    def env(self) -> dict[str, str]:
        """Environment every Airflow component of this instance is started with.

        Inherited Airflow settings (``AIRFLOW_HOME``, ``AIRFLOW_CONFIG``,
        ``AIRFLOW__*``, ``AIRFLOW_CONN_*``, ``AIRFLOW_VAR_*``, ``AIRFLOW_CTX_*``) are
        dropped so the instance is hermetic; ``extra_env`` is applied last.
        """
        env = {k: v for k, v in os.environ.items() if not _is_inherited_airflow_setting(k)}
        pythonpath = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        source_root = _source_root()
        if source_root is not None and str(source_root) not in pythonpath:
            pythonpath.insert(0, str(source_root))
        no_proxy = ",".join(p for p in (env.get("NO_PROXY") or env.get("no_proxy"), "127.0.0.1", "localhost") if p)
        env.update(
            {
                "PATH": f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}",
                "VIRTUAL_ENV": str(self.bin_dir.parent),
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join(pythonpath),
                "NO_PROXY": no_proxy,
                "no_proxy": no_proxy,
                INSTANCE_MARKER_ENV: self.instance_id,
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__FERNET_KEY": self._secrets["fernet_key"],
                "AIRFLOW__CORE__AUTH_MANAGER": _SIMPLE_AUTH_MANAGER,
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": self.execution_api_url,
                "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "0",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url,
                "AIRFLOW__API__HOST": self.host,
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": self._secrets["api_secret_key"],
                "AIRFLOW__API__EXPOSE_CONFIG": "True",
                "AIRFLOW__API_AUTH__JWT_SECRET": self._secrets["jwt_secret"],
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            }
        )
        if not pythonpath:
            del env["PYTHONPATH"]
        if self.celery is not None:
            env.update(self.celery.env())
        env.update(self.extra_env)
        return env

    def _component_env(self, name: str) -> dict[str, str]:
        """``env`` plus what one component adds (a Celery worker's host name); ``extra_env`` still wins."""
        env = self.env
        if self.celery is not None and name in self.celery.component_names:
            added = self.celery.worker_env(self.celery.worker_name(name))
            env.update({k: v for k, v in added.items() if k not in self.extra_env})
        return env

    # --------------------------------------------------------------- processes

    def _command(self, *args: str) -> list[str]:
        airflow_bin = self.bin_dir / "airflow"
        if airflow_bin.exists():
            return [str(airflow_bin), *args]
        return [sys.executable, "-m", "airflow", *args]

    def migrate(self, timeout: float = 300.0) -> None:
        """Create/upgrade the metadata DB schema (``airflow db migrate``)."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.component_log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.component_log_dir / "db-migrate.log"
        t0 = time.monotonic()
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                self._command("db", "migrate"),
                env=self.env,
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise AirflowInstanceError(
                    f"airflow db migrate took more than {timeout:.0f}s:\n{tail_of(log_path, 60)}"
                ) from None
        if proc.returncode != 0:
            raise AirflowInstanceError(f"airflow db migrate failed (rc={proc.returncode}):\n{tail_of(log_path, 60)}")
        self._migrated = True
        self.timings["migrate"] = time.monotonic() - t0

    @property
    def component_names(self) -> tuple[str, ...]:
        """Components this instance runs, in start order."""
        names = ["dag-processor", "scheduler", "api-server"]
        if self.with_triggerer:
            names.append("triggerer")
        if self.celery is not None:
            names = [REDIS, *names, *self.celery.component_names]
        return tuple(names)

    def _known_components(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*COMPONENTS, *self.component_names]))

    def log_path(self, name: str) -> Path:
        """Path of the stdout/stderr log file of component ``name``."""
        return self.component_log_dir / f"{name}.log"

    def _start_component(self, name: str) -> Component:
        if name not in self._known_components():
            raise ValueError(f"unknown component {name!r}; expected one of {self._known_components()}")
        existing = self._components.get(name)
        if existing is not None:
            if existing.popen.poll() is None:
                raise AirflowInstanceError(f"{name} is already running (pid {existing.popen.pid})")
            # it died on its own: clean up what it left behind before replacing it
            self._stop_components([name], timeout=5.0)
        self.component_log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_path(name)
        log_file = path.open("ab")
        started_at = datetime.now(UTC)
        log_file.write(f"\n===== starting {name} at {started_at.isoformat()} =====\n".encode())
        log_file.flush()
        self._log_offsets[name] = log_file.tell()
        popen = subprocess.Popen(
            self._component_command(name),
            env=self._component_env(name),
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._sessions.add(popen.pid)
        component = Component(name, popen, path, log_file, started_at)
        self._components[name] = component
        return component

    def _component_command(self, name: str) -> list[str]:
        if name == REDIS and self._redis_binary is not None:
            workdir = self.home / "redis"
            workdir.mkdir(parents=True, exist_ok=True)
            return redis_command(self._redis_binary, self._require_celery().broker_port, workdir)
        if self.celery is not None and name in self.celery.component_names:
            return self._command(*self.celery.worker_args(self.celery.worker_name(name)))
        args = {
            "api-server": ("api-server", "--port", str(self.port), "--host", self.host),
        }.get(name, (name,))
        return self._command(*args)

    def _stop_components(
        self,
        names: Iterable[str],
        timeout: float,
        whole_session: bool = True,
        leftover_sig: signal.Signals = signal.SIGTERM,
    ) -> None:
        """SIGTERM the process groups of ``names`` together, SIGKILL what outlives ``timeout``.

        With ``whole_session``, processes that left the group but not the
        component's session (task runners) are terminated as well.
        """
        targets = [self._components[n] for n in names if n in self._components]
        for comp in targets:
            killpg(comp.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for comp in targets:
            while time.monotonic() < deadline:
                comp.popen.poll()
                if comp.popen.returncode is not None and not group_alive(comp.popen.pid):
                    break
                time.sleep(0.1)
            if comp.popen.poll() is None or group_alive(comp.popen.pid):
                killpg(comp.popen.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    comp.popen.wait(timeout=10)
            if whole_session:
                leftovers = self._pids_matching({comp.popen.pid}, use_marker=False)
                self._terminate_pids(leftovers, first_sig=leftover_sig)
                # the session is empty now; forget it so a reused pid is never mistaken for ours
                self._sessions.discard(comp.popen.pid)
            comp.log_file.write(f"\n===== stopped {comp.name} rc={comp.popen.returncode} =====\n".encode())
            comp.log_file.close()
            del self._components[comp.name]

    def instance_pids(self) -> list[int]:
        """Every live process that belongs to this instance.

        A process belongs to the instance if it is in the session of a component
        this instance started (components are session leaders; task processes
        keep the session although Airflow moves them to process groups of their
        own), carries this instance's ``AIRFLOW_CLAUDE_INSTANCE_ID`` in its
        environment (catches ``setsid`` children such as Bash subprocesses),
        or descends from such a process.
        """
        return self._pids_matching(self._sessions, use_marker=True)

    def _pids_matching(self, sessions: Iterable[int], use_marker: bool) -> list[int]:
        sessions = set(sessions)
        marker = f"{INSTANCE_MARKER_ENV}={self.instance_id}".encode()
        me = os.getpid()
        parents: dict[int, int] = {}
        found: set[int] = set()
        for pid in all_pids():
            stat = proc_stat(pid)
            if pid == me or stat is None or stat[0] in ("Z", "X"):
                continue
            parents[pid] = stat[1]
            if stat[3] in sessions:
                found.add(pid)
            elif use_marker:
                try:
                    environ = Path(f"/proc/{pid}/environ").read_bytes()
                except OSError:
                    continue
                if marker in environ.split(b"\0"):
                    found.add(pid)
        # add descendants of everything found so far
        changed = bool(found)
        while changed:
            children = {pid for pid, ppid in parents.items() if ppid in found and pid not in found}
            found |= children
            changed = bool(children)
        return sorted(found)

    def _terminate_pids(
        self, pids: Iterable[int], timeout: float = 5.0, first_sig: signal.Signals = signal.SIGTERM
    ) -> None:
        alive = list(pids)
        for pid in alive:
            kill(pid, first_sig)
        deadline = time.monotonic() + timeout
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [p for p in alive if pid_alive(p)]
        for pid in alive:
            kill(pid, signal.SIGKILL)

    def _sweep(self, timeout: float = 5.0) -> None:
        """Terminate stray processes of this instance (e.g. orphaned task runners)."""
        self._terminate_pids(self.instance_pids(), timeout)

    def start(self) -> AirflowInstance:
        """Start all components and wait until scheduler & dag-processor are healthy."""
        if self._components:
            raise AirflowInstanceError("instance already started")
        self.home.mkdir(parents=True, exist_ok=True)
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        if not self._migrated:
            self.migrate()
        if not self._atexit_registered:
            atexit.register(self._atexit_stop)
            self._atexit_registered = True
            exit_cleanly_on_sigterm()
        started_at = datetime.now(UTC)
        t0 = time.monotonic()
        try:
            for name in self.component_names:
                self._start_component(name)
                if name == REDIS:  # the broker answers before anything that sends to it starts
                    self.wait_healthy([REDIS], timeout=30.0)
            self.wait_healthy(self.component_names, since=started_at, timeout=self.startup_timeout)
            self.timings["start"] = time.monotonic() - t0
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 20.0) -> None:
        """Stop every component (SIGTERM, then SIGKILL after ``timeout``) and stray task processes."""
        self._close_http()
        try:
            # scheduler/triggerer/dag-processor (and Celery workers) together, api-server next, the broker last
            workers = self.celery.component_names if self.celery else ()
            self._stop_components([*(n for n in _STOP_ORDER if n != "api-server"), *workers], timeout)
            self._stop_components(["api-server"], timeout)
            self._stop_components([REDIS], timeout)
        finally:
            self._sweep()
            if self._atexit_registered:
                atexit.unregister(self._atexit_stop)
                self._atexit_registered = False

    def _atexit_stop(self) -> None:
        with contextlib.suppress(Exception):
            self.stop(timeout=5.0)

    def __enter__(self) -> AirflowInstance:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def pid_of(self, name: str) -> int | None:
        """Pid (== process-group id) of component ``name``, or None if not running."""
        comp = self._components.get(name)
        if comp is None or comp.popen.poll() is not None:
            return None
        return comp.popen.pid

    def is_running(self, name: str) -> bool:
        """Whether component ``name`` is currently running."""
        return self.pid_of(name) is not None

    def stop_component(
        self,
        name: str,
        timeout: float = 20.0,
        sig: signal.Signals = signal.SIGTERM,
        whole_session: bool = True,
    ) -> None:
        """Stop one component's process group.

        ``sig=signal.SIGKILL`` simulates a crash. With ``whole_session`` (default)
        the task processes the component launched (e.g. LocalExecutor tasks of
        the scheduler, which run in process groups of their own) die too, like
        on a real host/container crash; with False they are left running.
        """
        comp = self._components.get(name)
        if comp is None:
            raise AirflowInstanceError(f"{name} is not running")
        if sig != signal.SIGTERM:
            killpg(comp.popen.pid, sig)
        self._stop_components([name], timeout, whole_session=whole_session, leftover_sig=sig)

    def start_component(self, name: str, wait: bool = True, timeout: float = 60.0) -> int:
        """Start one (stopped) component; optionally wait until it is healthy. Returns its pid."""
        comp = self._start_component(name)
        if wait:
            self.wait_healthy([name], since=comp.started_at, timeout=timeout)
        return comp.popen.pid

    def restart_component(
        self,
        name: str,
        wait: bool = True,
        timeout: float = 60.0,
        sig: signal.Signals = signal.SIGTERM,
        whole_session: bool = True,
    ) -> int:
        """Stop and start one component (fault injection); returns the new pid.

        See ``stop_component`` for ``sig`` and ``whole_session``.
        """
        if name in self._components:
            self.stop_component(name, sig=sig, whole_session=whole_session)
        return self.start_component(name, wait=wait, timeout=timeout)

    def dead_components(self) -> dict[str, int]:
        """Components that were started but exited on their own: ``{name: returncode}``."""
        return {name: comp.popen.returncode for name, comp in self._components.items() if comp.popen.poll() is not None}

    def _raise_if_dead(self) -> None:
        dead = self.dead_components()
        if dead:
            details = "\n".join(
                f"--- {name} exited rc={rc}, log tail:\n{tail_of(self.log_path(name), 40)}" for name, rc in dead.items()
            )
            raise AirflowInstanceError(f"Airflow component(s) died: {sorted(dead)}\n{details}")

    def log_tails(self, lines: int = 50) -> str:
        """Tails of every component log, for failure reports (2xx/3xx access-log lines left out)."""
        chunks = []
        for name in [*self._known_components(), "db-migrate"]:
            path = self.log_path(name)
            if path.exists():
                tail = tail_of(path, lines, skip_ok_access_log=True)
                chunks.append(f"----- {path} (last {lines} lines) -----\n{tail}")
        return "\n".join(chunks)

    # ------------------------------------------------------------------ health

    def wait_healthy(
        self,
        names: Iterable[str] | None = None,
        since: datetime | None = None,
        timeout: float = 120.0,
    ) -> dict[str, Any]:
        """Wait until the components in ``names`` report healthy.

        With ``since``, a job heartbeat must also be newer than it, so a job row
        left by a previous (or just killed) process does not count.
        """
        wanted = tuple(names or self.component_names)
        heartbeat_keys = {
            "scheduler": ("scheduler", "latest_scheduler_heartbeat"),
            "dag-processor": ("dag_processor", "latest_dag_processor_heartbeat"),
            "triggerer": ("triggerer", "latest_triggerer_heartbeat"),
        }
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            self._raise_if_dead()
            waiting = [n for n in wanted if not self._process_ready(n)]
            if waiting:  # the broker and the workers first: they say so themselves, not the api-server
                last = f"not ready yet: {waiting}"
                if time.monotonic() > deadline:
                    raise AirflowInstanceError(
                        f"Airflow not healthy after {timeout:.0f}s ({last})\n" + self.log_tails(30)
                    )
                time.sleep(0.5)
                continue
            if not any(n in ("api-server", *heartbeat_keys) for n in wanted):
                return {}
            try:
                info = self.health()
                last = info
                ok = info.get("metadatabase", {}).get("status") == "healthy"
                for name in wanted:
                    if name not in heartbeat_keys:
                        continue  # api-server: answering at all is enough
                    section, key = heartbeat_keys[name]
                    part = info.get(section) or {}
                    beat = _parse_ts(part.get(key))
                    if part.get("status") != "healthy" or (since and (beat is None or beat < since)):
                        ok = False
                if ok:
                    return info
            except (httpx.HTTPError, ValueError) as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise AirflowInstanceError(
                    f"Airflow not healthy after {timeout:.0f}s (waiting for {wanted}); last: {last}\n"
                    + self.log_tails(30)
                )
            time.sleep(0.5)

    def _process_ready(self, name: str) -> bool:
        """Readiness of the components the health endpoint does not cover (True for the others)."""
        if self.celery is None:
            return True
        if name == REDIS:
            return redis_ping(self.celery.broker_port)
        if name in self.celery.component_names:
            worker = self.celery.worker_name(name)
            try:
                with self.log_path(name).open("rb") as handle:
                    handle.seek(self._log_offsets.get(name, 0))
                    text = handle.read().decode("utf-8", errors="replace")
            except OSError:
                return False
            return self.celery.says_ready(worker, text)
        return True


def main(argv: Sequence[str] | None = None) -> int:
    """Start an instance and keep it up until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.harness.airflow_instance",
        description="Run a local multi-process Airflow 3 (api-server, scheduler, dag-processor).",
    )
    parser.add_argument("--home", type=Path, required=True, help="AIRFLOW_HOME (created if missing)")
    parser.add_argument("--dags", type=Path, required=True, help="DAGs folder")
    parser.add_argument("--port", type=int, default=None, help="api-server port (default: a free one)")
    parser.add_argument("--db-url", default=None, help="metadata DB URL (default: SQLite in --home)")
    parser.add_argument("--triggerer", action="store_true", help="also run a triggerer")
    parser.add_argument("--executor", choices=EXECUTORS, default="local", help="celery needs a PostgreSQL --db-url")
    parser.add_argument(
        "--worker",
        action="append",
        default=[],
        metavar="NAME=QUEUE[,QUEUE]",
        help="a Celery worker and its queues (repeatable; default w1=default and w2=default)",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment (repeatable)"
    )
    args = parser.parse_args(argv)

    extra_env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--env expects KEY=VALUE, got {item!r}")
        extra_env[key] = value

    workers: dict[str, tuple[str, ...]] = {}
    for item in args.worker:
        name, sep, queues = item.partition("=")
        if not sep:
            parser.error(f"--worker expects NAME=QUEUE[,QUEUE], got {item!r}")
        workers[name] = tuple(q for q in queues.split(",") if q)

    stop_requested = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    instance = AirflowInstance(
        home=args.home,
        dags_folder=args.dags,
        db_url=args.db_url,
        extra_env=extra_env,
        port=args.port,
        with_triggerer=args.triggerer,
        executor=args.executor,
        celery_workers=workers or None,
    )
    print(f"Starting Airflow in {instance.home} (DAGs: {instance.dags_folder}) ...", flush=True)
    t0 = time.monotonic()
    instance.start()
    print(f"Airflow is up after {time.monotonic() - t0:.1f}s.", flush=True)
    print(f"  open {instance.ui_url}", flush=True)
    if instance.all_admins:
        print("  login: not needed (simple auth manager, everyone is admin)", flush=True)
    else:
        print(f"  login: credentials in {instance.admin_password_file}", flush=True)
    print(f"  component logs: {instance.component_log_dir}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    exit_code = 0
    try:
        while not stop_requested.wait(1.0):
            dead = instance.dead_components()
            if dead:
                print(f"Component(s) exited unexpectedly: {dead}; see {instance.component_log_dir}", flush=True)
                exit_code = 1
                break
    finally:
        print("Stopping Airflow ...", flush=True)
        instance.stop()
        print("Stopped.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
