"""Run a real, multi-process Airflow 3 instance for end-to-end tests and demos.

``AirflowInstance`` starts the separate Airflow components (``dag-processor``,
``scheduler``, ``api-server`` and optionally ``triggerer``) as background
processes, each in its own session/process group, with an isolated
``AIRFLOW_HOME``.  It also carries a small REST client for the public API
(``/api/v2``) with the helpers end-to-end tests need: trigger a run, wait for
it, read task instances, XComs and logs, answer human-in-the-loop tasks,
force a re-parse.

Typical use::

    with AirflowInstance(home=tmp / "home", dags_folder=tmp / "dags") as af:
        af.wait_for_dag("my_dag")
        run_id = af.trigger("my_dag")
        assert af.wait_for_run("my_dag", run_id, timeout=120) == "success"

Command line (used by the README demo)::

    python -m airflow_claude.testing.airflow_instance --home DIR --dags DIR [--port N]

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
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import quote

import httpx

__all__ = [
    "COMPONENTS",
    "AirflowApiError",
    "AirflowInstance",
    "AirflowInstanceError",
    "free_port",
    "main",
]

#: Component names accepted by ``restart_component``/``pid_of`` and friends.
COMPONENTS: tuple[str, ...] = ("dag-processor", "scheduler", "api-server", "triggerer")

#: Environment variable put into every child's environment; helps find processes
#: of one instance that left the component's session (e.g. ``setsid`` children).
INSTANCE_MARKER_ENV = "AIRFLOW_CLAUDE_INSTANCE_ID"

_SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
_TERMINAL_RUN_STATES: tuple[str, ...] = ("success", "failed")
# Stop order: nothing new gets scheduled first, the api-server goes last so that
# task processes still finishing can report their state through the execution API.
_STOP_ORDER: tuple[str, ...] = ("scheduler", "triggerer", "dag-processor", "api-server")


class AirflowInstanceError(RuntimeError):
    """The Airflow instance failed to start, died, or did not reach a state in time."""


class AirflowApiError(AirflowInstanceError):
    """The Airflow REST API answered with an unexpected status code."""

    def __init__(self, method: str, url: str, status_code: int, body: str) -> None:
        super().__init__(f"{method} {url} -> HTTP {status_code}: {body[:2000]}")
        self.method = method
        self.url = url
        self.status_code = status_code
        self.body = body


@dataclass
class _Component:
    """A running Airflow component process (leader of its own process group)."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]
    started_at: datetime


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _seg(value: str | int) -> str:
    """Quote one URL path segment (run ids contain ``:`` and ``+``)."""
    return quote(str(value), safe="")


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
    """Checkout root holding ``airflow_claude`` when it is not installed into site-packages.

    Put on the components' PYTHONPATH so DAG files can ``import airflow_claude``.
    """
    root = Path(__file__).resolve().parents[2]
    if root.name in ("site-packages", "dist-packages"):
        return None
    return root if (root / "airflow_claude" / "__init__.py").exists() else None


def _proc_stat(pid: int) -> tuple[str, int, int, int] | None:
    """Return ``(state, ppid, pgid, sid)`` of ``pid`` from /proc, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces/parens.
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[3])


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    stat = _proc_stat(pid)
    if stat is not None:
        return stat[0] not in ("Z", "X")
    if Path("/proc").is_dir():
        return False
    try:  # pragma: no cover - non-Linux fallback
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _all_pids() -> Iterator[int]:
    try:
        entries = os.listdir("/proc")
    except OSError:  # pragma: no cover - non-Linux
        return
    for entry in entries:
        if entry.isdigit():
            yield int(entry)


def _group_pids(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    result = []
    for pid in _all_pids():
        stat = _proc_stat(pid)
        if stat is not None and stat[2] == pgid and stat[0] not in ("Z", "X"):
            result.append(pid)
    return result


def _group_alive(pgid: int) -> bool:
    if Path("/proc").is_dir():
        return bool(_group_pids(pgid))
    try:  # pragma: no cover - non-Linux fallback
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exit_cleanly_on_sigterm() -> bool:
    """Make SIGTERM stop the program like Ctrl-C, so ``finally`` blocks and atexit stop our Airflow.

    Python's default SIGTERM ends the process at once: a test run stopped by ``timeout`` or
    ``kill`` would leave every component running in its own process group. It raises
    ``KeyboardInterrupt``, not ``SystemExit``: pytest reports a ``SystemExit`` in a test as a
    failure and goes on to the next test, but stops the whole run on an interrupt. Installed
    only from the main thread and only over the default handler (a handler someone set
    stays); returns whether it was installed.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return False
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return True


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum} (SIGTERM)")


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


_ACCESS_LOG_OK = re.compile(r"\[http\.access\].*status_code=(2|3)\d\d")


def _tail(path: Path, lines: int, skip_ok_access_log: bool = False) -> str:
    """Last ``lines`` lines of ``path``; optionally without successful api-server access-log lines."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            window = 512 * lines * (20 if skip_ok_access_log else 1)
            handle.seek(max(0, size - window))
            data = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line for line in data.splitlines() if not (skip_ok_access_log and _ACCESS_LOG_OK.search(line))]
    return "\n".join(kept[-lines:])


def _has_serde_marker(value: Any) -> bool:
    if isinstance(value, Mapping):
        return "__classname__" in value or any(_has_serde_marker(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_serde_marker(v) for v in value)
    return False


def format_log_content(content: Sequence[Any]) -> str:
    """Render the ``content`` of a task-log API response as plain text lines."""
    out: list[str] = []
    for entry in content:
        if isinstance(entry, Mapping):
            event = str(entry.get("event", ""))
            ts = entry.get("timestamp")
            level = entry.get("level")
            logger = entry.get("logger")
            extras = {k: v for k, v in entry.items() if k not in ("event", "timestamp", "level", "logger")}
            parts = [str(p) for p in (ts, level.upper() if isinstance(level, str) else level) if p]
            if logger:
                parts.append(f"{logger}:")
            parts.append(event)
            if extras:
                parts.append(json.dumps(extras, default=str, sort_keys=True))
            out.append(" ".join(parts))
        else:
            out.append(str(entry))
    return "\n".join(out)


class AirflowInstance:
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
    ) -> None:
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
        self._components: dict[str, _Component] = {}
        # pids (== session ids) of component leaders whose sessions may still hold processes
        self._sessions: set[int] = set()
        self._migrated = False
        self._client: httpx.Client | None = None
        self._token: str | None = None
        self._atexit_registered = False
        #: seconds taken by ``migrate`` and by ``start`` (processes up to healthy), once known
        self.timings: dict[str, float] = {}

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
        env.update(self.extra_env)
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
                _killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise AirflowInstanceError(
                    f"airflow db migrate took more than {timeout:.0f}s:\n{_tail(log_path, 60)}"
                ) from None
        if proc.returncode != 0:
            raise AirflowInstanceError(f"airflow db migrate failed (rc={proc.returncode}):\n{_tail(log_path, 60)}")
        self._migrated = True
        self.timings["migrate"] = time.monotonic() - t0

    @property
    def component_names(self) -> tuple[str, ...]:
        """Components this instance runs, in start order."""
        names = ["dag-processor", "scheduler", "api-server"]
        if self.with_triggerer:
            names.append("triggerer")
        return tuple(names)

    def log_path(self, name: str) -> Path:
        """Path of the stdout/stderr log file of component ``name``."""
        return self.component_log_dir / f"{name}.log"

    def _start_component(self, name: str) -> _Component:
        if name not in COMPONENTS:
            raise ValueError(f"unknown component {name!r}; expected one of {COMPONENTS}")
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
        args = {
            "api-server": ("api-server", "--port", str(self.port), "--host", self.host),
        }.get(name, (name,))
        popen = subprocess.Popen(
            self._command(*args),
            env=self.env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._sessions.add(popen.pid)
        component = _Component(name, popen, path, log_file, started_at)
        self._components[name] = component
        return component

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
            _killpg(comp.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for comp in targets:
            while time.monotonic() < deadline:
                comp.popen.poll()
                if comp.popen.returncode is not None and not _group_alive(comp.popen.pid):
                    break
                time.sleep(0.1)
            if comp.popen.poll() is None or _group_alive(comp.popen.pid):
                _killpg(comp.popen.pid, signal.SIGKILL)
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
        for pid in _all_pids():
            stat = _proc_stat(pid)
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
            _kill(pid, first_sig)
        deadline = time.monotonic() + timeout
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [p for p in alive if _pid_alive(p)]
        for pid in alive:
            _kill(pid, signal.SIGKILL)

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
            self.wait_healthy(self.component_names, since=started_at, timeout=self.startup_timeout)
            self.timings["start"] = time.monotonic() - t0
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 20.0) -> None:
        """Stop every component (SIGTERM, then SIGKILL after ``timeout``) and stray task processes."""
        if self._client is not None:
            self._client.close()
            self._client = None
        self._token = None
        try:
            # scheduler/triggerer/dag-processor together, api-server last
            self._stop_components([n for n in _STOP_ORDER if n != "api-server"], timeout)
            self._stop_components(["api-server"], timeout)
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
            _killpg(comp.popen.pid, sig)
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
                f"--- {name} exited rc={rc}, log tail:\n{_tail(self.log_path(name), 40)}" for name, rc in dead.items()
            )
            raise AirflowInstanceError(f"Airflow component(s) died: {sorted(dead)}\n{details}")

    def log_tails(self, lines: int = 50) -> str:
        """Tails of every component log, for failure reports (2xx/3xx access-log lines left out)."""
        chunks = []
        for name in [*COMPONENTS, "db-migrate"]:
            path = self.log_path(name)
            if path.exists():
                tail = _tail(path, lines, skip_ok_access_log=True)
                chunks.append(f"----- {path} (last {lines} lines) -----\n{tail}")
        return "\n".join(chunks)

    # ------------------------------------------------------------------ health

    def health(self) -> dict[str, Any]:
        """``GET /api/v2/monitor/health`` (no authentication needed)."""
        resp = self._http().get("/api/v2/monitor/health", timeout=10)
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

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

    # ------------------------------------------------------------- REST client

    def _http(self) -> httpx.Client:
        if self._client is None:
            # trust_env=False: never send 127.0.0.1 traffic through an HTTP proxy
            self._client = httpx.Client(base_url=self.base_url, timeout=60.0, trust_env=False)
        return self._client

    def token(self, refresh: bool = False) -> str:
        """A bearer token for the REST API (cached)."""
        if self._token and not refresh:
            return self._token
        client = self._http()
        if self.all_admins:
            resp = client.get("/auth/token")
        else:
            creds = self.admin_credentials()
            users = self.env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
            username = users.split(",")[0].split(":")[0].strip()
            if username not in creds:
                raise AirflowInstanceError(f"no password for {username!r} in {self.admin_password_file}")
            resp = client.post("/auth/token", json={"username": username, "password": creds[username]})
        if resp.status_code not in (200, 201):
            raise AirflowApiError("POST", str(resp.url), resp.status_code, resp.text)
        self._token = str(resp.json()["access_token"])
        return self._token

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://", "/api/", "/auth/", "/execution/")):
            return path
        return "/api/v2" + (path if path.startswith("/") else "/" + path)

    def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        ok: Sequence[int] = (200, 201, 204),
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Call the REST API; ``path`` is relative to ``/api/v2`` unless it starts with ``/api/``.

        Returns the decoded JSON body (or None for empty bodies); raises
        ``AirflowApiError`` for a status code not in ``ok``.
        """
        url = self._url(path)
        for attempt in range(2):
            hdrs = {"Authorization": f"Bearer {self.token(refresh=attempt > 0)}", **(headers or {})}
            resp = self._http().request(method, url, json=json, params=params, headers=hdrs)
            if resp.status_code != 401:
                break
        for attempt in range(1, 5):  # a read of a busy SQLite DB can answer 500: reads are safe to repeat
            if method != "GET" or resp.status_code < 500 or "Database error" not in resp.text:
                break
            time.sleep(1.0 * attempt)
            resp = self._http().request(method, url, json=json, params=params, headers=hdrs)
        if resp.status_code not in ok:
            raise AirflowApiError(method, str(resp.url), resp.status_code, resp.text)
        if not resp.content:
            return None
        if "json" in resp.headers.get("content-type", ""):
            return resp.json()
        return resp.text

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """``GET`` a REST API path (see ``request``)."""
        return self.request("GET", path, params=params)

    def post(self, path: str, json: Any = None) -> Any:
        """``POST`` to a REST API path (see ``request``)."""
        return self.request("POST", path, json=json)

    def patch(self, path: str, json: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        """``PATCH`` a REST API path (see ``request``)."""
        return self.request("PATCH", path, json=json, params=params)

    def put(self, path: str, json: Any = None) -> Any:
        """``PUT`` a REST API path (see ``request``)."""
        return self.request("PUT", path, json=json)

    def delete(self, path: str) -> Any:
        """``DELETE`` a REST API path (see ``request``)."""
        return self.request("DELETE", path)

    def _paged(self, path: str, key: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.get(path, params={**(params or {}), "limit": 100, "offset": offset})
            chunk = page.get(key, [])
            items.extend(chunk)
            offset += len(chunk)
            if not chunk or offset >= int(page.get("total_entries", 0)):
                return items

    # ----------------------------------------------------------- DAG helpers

    def import_errors(self) -> list[dict[str, Any]]:
        """All DAG import errors (``filename``, ``stack_trace``, ...)."""
        return self._paged("/importErrors", "import_errors")

    def dag(self, dag_id: str) -> dict[str, Any]:
        """``GET /dags/{dag_id}``."""
        result: dict[str, Any] = self.get(f"/dags/{_seg(dag_id)}")
        return result

    def wait_for_dag(self, dag_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until ``dag_id`` is parsed, serialized and visible through the API."""
        deadline = time.monotonic() + timeout
        while True:
            self._raise_if_dead()
            try:
                dag = self.dag(dag_id)
                if not dag.get("is_stale"):
                    # a run can only be created once the serialized DAG exists
                    self.get(f"/dags/{_seg(dag_id)}/details")
                    return dag
            except AirflowApiError as exc:
                if exc.status_code != 404:
                    raise
            if time.monotonic() > deadline:
                errors = self.import_errors()
                raise AirflowInstanceError(
                    f"DAG {dag_id!r} not visible after {timeout:.0f}s; import errors: "
                    f"{json.dumps(errors, indent=1)[:4000]}\n{self.log_tails(30)}"
                )
            time.sleep(0.5)

    def unpause(self, dag_id: str) -> dict[str, Any]:
        """Unpause ``dag_id``."""
        result: dict[str, Any] = self.patch(f"/dags/{_seg(dag_id)}", json={"is_paused": False})
        return result

    def pause(self, dag_id: str) -> dict[str, Any]:
        """Pause ``dag_id``."""
        result: dict[str, Any] = self.patch(f"/dags/{_seg(dag_id)}", json={"is_paused": True})
        return result

    def trigger(
        self,
        dag_id: str,
        conf: Mapping[str, Any] | None = None,
        logical_date: datetime | str | None = None,
        run_id: str | None = None,
    ) -> str:
        """Create a manual DAG run and return its run id.

        On SQLite a busy database answers 500 ("Database error"), which would fail a test for
        nothing. The run id is chosen here (Airflow's own ``manual__<time>`` form), so a retry
        is safe: a 409 on a retry means the earlier try did create the run.
        """
        if isinstance(logical_date, datetime):
            if logical_date.tzinfo is None:
                logical_date = logical_date.replace(tzinfo=UTC)
            logical_date = logical_date.isoformat()
        run_id = run_id or f"manual__{datetime.now(UTC).isoformat()}"
        body: dict[str, Any] = {"logical_date": logical_date, "conf": dict(conf or {}), "dag_run_id": run_id}
        attempts = 6
        for attempt in range(1, attempts + 1):
            try:
                run = self.post(f"/dags/{_seg(dag_id)}/dagRuns", json=body)
                return str(run["dag_run_id"])
            except AirflowApiError as exc:
                if exc.status_code == 409 and attempt > 1:
                    return run_id
                if exc.status_code < 500 or attempt == attempts:
                    raise
                time.sleep(2.0 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """``GET /dags/{dag_id}/dagRuns/{run_id}``."""
        result: dict[str, Any] = self.get(f"/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}")
        return result

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        timeout: float = 120.0,
        states: Sequence[str] = _TERMINAL_RUN_STATES,
    ) -> str:
        """Wait until the run's state is one of ``states``; return that state."""
        deadline = time.monotonic() + timeout
        state = None
        while True:
            self._raise_if_dead()
            state = self.dag_run(dag_id, run_id).get("state")
            if state in states:
                return str(state)
            if time.monotonic() > deadline:
                tis = [
                    (t["task_id"], t["map_index"], t["state"], t["try_number"])
                    for t in self.task_instances(dag_id, run_id)
                ]
                raise AirflowInstanceError(
                    f"run {dag_id}/{run_id} still {state!r} after {timeout:.0f}s "
                    f"(wanted {tuple(states)}); task instances: {tis}"
                )
            time.sleep(0.5)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """All task instances of a run, one per map index, with ``state`` and ``try_number``."""
        return self._paged(f"/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances", "task_instances")

    def _ti_path(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        path = f"/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances/{_seg(task_id)}"
        return path if map_index < 0 else f"{path}/{map_index}"

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        """One task instance (current try)."""
        result: dict[str, Any] = self.get(self._ti_path(dag_id, run_id, task_id, map_index))
        return result

    def task_tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        """Every try of one task instance (history and current), oldest first."""
        path = f"/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances/{_seg(task_id)}"
        path = f"{path}/{map_index}/tries" if map_index >= 0 else f"{path}/tries"
        tries = self._paged(path, "task_instances")
        return sorted(tries, key=lambda t: int(t.get("try_number") or 0))

    def wait_for_task_state(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        states: Sequence[str],
        map_index: int = -1,
        timeout: float = 120.0,
    ) -> dict[str, Any]:
        """Wait until a task instance is in one of ``states``; return it."""
        deadline = time.monotonic() + timeout
        while True:
            self._raise_if_dead()
            try:
                ti = self.task_instance(dag_id, run_id, task_id, map_index)
                if ti.get("state") in states:
                    return ti
                state = ti.get("state")
            except AirflowApiError as exc:
                if exc.status_code != 404:
                    raise
                state = "<not created yet>"
            if time.monotonic() > deadline:
                raise AirflowInstanceError(
                    f"{dag_id}/{run_id}/{task_id}[{map_index}] still {state!r} after {timeout:.0f}s "
                    f"(wanted {tuple(states)})"
                )
            time.sleep(0.25)

    def xcom(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        key: str = "return_value",
        map_index: int = -1,
    ) -> Any:
        """The XCom value as a Python object.

        The API returns the stored JSON value as-is (a task returning ``"42"``
        gives the string ``"42"``); objects the Task SDK encoded with ``serde``
        (tuples, datetimes...) are decoded with ``airflow.sdk.serde``. A task that
        returned None stores no XCom: that is an ``AirflowApiError`` with status 404.
        """
        path = (
            f"/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances/{_seg(task_id)}"
            f"/xcomEntries/{quote(key, safe='')}"
        )
        entry = self.get(path, params={"map_index": map_index})
        value = entry.get("value")
        if _has_serde_marker(value):
            try:
                from airflow.sdk.serde import deserialize

                return deserialize(value)
            except Exception:  # fall back to the encoded form
                return value
        return value

    def task_log(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int,
        map_index: int = -1,
    ) -> str:
        """Full log of one try of a task instance, as text."""
        path = f"/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances/{_seg(task_id)}/logs/{try_number}"
        body = self.request(
            "GET",
            path,
            params={"map_index": map_index, "full_content": "true"},
            headers={"Accept": "application/json"},
        )
        if isinstance(body, str):
            return body
        return format_log_content(body.get("content") or [])

    def answer_hitl(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        chosen_options: Sequence[str],
        params_input: Mapping[str, Any] | None = None,
        map_index: int = -1,
        timeout: float = 120.0,
        settle_seconds: float = 8.0,
    ) -> dict[str, Any]:
        """Answer a human-in-the-loop task safely.

        Waits until the task instance is ``awaiting_input``, then another
        ``settle_seconds``, then PATCHes ``hitlDetails``. The pause avoids an
        Airflow 3.3.2 race: the answer moves the task to ``scheduled`` and the
        scheduler re-queues it; if that happens before the scheduler has handled
        the executor's "workload finished" event of the parking run, it sees a
        finished workload for a queued task and marks the task FAILED. On a loaded
        machine that event came 5 s after the task parked, so the pause grows with
        every try the race costs (8 s, 16 s, 24 s by default).
        """
        path = f"/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances/{_seg(task_id)}/{map_index}/hitlDetails"
        body = {"chosen_options": list(chosen_options), "params_input": dict(params_input or {})}
        deadline = time.monotonic() + timeout
        result: dict[str, Any] = {}
        answered_try = 0
        answers = 0
        while True:
            ti = self.wait_for_task_state(
                dag_id, run_id, task_id, ("awaiting_input",), map_index, max(1.0, deadline - time.monotonic())
            )
            if ti.get("try_number", 0) <= answered_try:
                raise AirflowInstanceError(f"{task_id} is waiting again on try {ti.get('try_number')}")
            answers += 1
            time.sleep(settle_seconds * answers)
            result = self._patch_answer(path, body)
            answered_try = int(ti.get("try_number", 0))
            # If the race still hit (the task failed and Airflow retried it), the request comes back on
            # a new try, as a person would see it again in the UI: answer once more.
            if not self._asks_again(
                dag_id, run_id, task_id, map_index, answered_try, min(60.0, deadline - time.monotonic())
            ):
                return result

    def _patch_answer(self, path: str, body: dict[str, Any], attempts: int = 6) -> dict[str, Any]:
        """PATCH the answer; on SQLite a busy database answers 500 ("Database error"): try again."""
        for attempt in range(1, attempts + 1):
            try:
                answer: dict[str, Any] = self.patch(path, json=body)
                return answer
            except AirflowApiError as exc:
                if exc.status_code < 500 or attempt == attempts:
                    raise
                time.sleep(2.0 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _asks_again(
        self, dag_id: str, run_id: str, task_id: str, map_index: int, answered_try: int, within: float
    ) -> bool:
        end = time.monotonic() + max(within, 0.0)
        while time.monotonic() < end:
            ti = self.task_instance(dag_id, run_id, task_id, map_index)
            state, try_number = ti.get("state"), int(ti.get("try_number") or 0)
            if state == "awaiting_input" and try_number > answered_try:
                return True
            if state in ("success", "skipped", "failed", "upstream_failed", "removed"):
                return False
            time.sleep(1.0)
        return False

    def hitl_detail(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        """The HITL detail (subject, options, response...) of a task instance."""
        path = f"/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances/{_seg(task_id)}/{map_index}/hitlDetails"
        result: dict[str, Any] = self.get(path)
        return result

    def file_token(self, file_path: Path | str) -> str:
        """The ``file_token`` of a DAG file (needed by ``parseDagFile``).

        Only files that define, or once defined, a DAG have one: Airflow refuses
        to re-parse a file no DAG row points to (a brand-new or never-valid file
        is picked up by the next directory scan, every ``refresh_interval``).
        """
        target = Path(file_path).absolute()
        for dag in self._paged("/dags", "dags", params={"exclude_stale": "false"}):
            if dag.get("fileloc") and Path(dag["fileloc"]).absolute() == target:
                return str(dag["file_token"])
        raise AirflowInstanceError(
            f"no DAG was ever parsed from {target}; Airflow only re-parses such files on request, "
            "new files are found by the periodic directory scan"
        )

    def force_reparse(self, file_path: Path | str) -> None:
        """Ask the dag-processor to re-parse one file now (``PUT /parseDagFile/{file_token}``).

        Note the new result is only stored if it differs from the stored one.
        """
        self.put(f"/parseDagFile/{_seg(self.file_token(file_path))}")

    def dag_versions(self, dag_id: str) -> list[dict[str, Any]]:
        """All stored versions of a DAG (``version_number``, ``bundle_version``, ...)."""
        return self._paged(f"/dags/{_seg(dag_id)}/dagVersions", "dag_versions")


def main(argv: Sequence[str] | None = None) -> int:
    """Start an instance and keep it up until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_claude.testing.airflow_instance",
        description="Run a local multi-process Airflow 3 (api-server, scheduler, dag-processor).",
    )
    parser.add_argument("--home", type=Path, required=True, help="AIRFLOW_HOME (created if missing)")
    parser.add_argument("--dags", type=Path, required=True, help="DAGs folder")
    parser.add_argument("--port", type=int, default=None, help="api-server port (default: a free one)")
    parser.add_argument("--db-url", default=None, help="metadata DB URL (default: SQLite in --home)")
    parser.add_argument("--triggerer", action="store_true", help="also run a triggerer")
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
