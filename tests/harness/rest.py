"""A small client of Airflow's public REST API (``/api/v2``) with the helpers end-to-end tests need.

``AirflowRestClient`` is the base of ``AirflowInstance``: it knows URLs, JSON, paging and SQLite's
busy answers; the instance supplies ``base_url``, how to log in, and how to tell a dead server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from .errors import AirflowApiError, AirflowInstanceError

_TERMINAL_RUN_STATES: tuple[str, ...] = ("success", "failed")


def seg(value: str | int) -> str:
    """Quote one URL path segment (run ids contain ``:`` and ``+``)."""
    return quote(str(value), safe="")


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


class AirflowRestClient:
    """REST calls against one api-server, authenticated with a cached bearer token."""

    _client: httpx.Client | None = None
    _token: str | None = None

    @property
    def base_url(self) -> str:
        """Root URL of the api-server, without trailing slash."""
        raise NotImplementedError

    def _login(self, client: httpx.Client) -> httpx.Response:
        """Ask ``/auth/token`` for a token; how depends on the server's auth settings."""
        raise NotImplementedError

    def _raise_if_dead(self) -> None:
        """Hook for waits: raise at once when the server is known to be gone."""

    def log_tails(self, lines: int = 50) -> str:
        """Hook for error messages: recent server logs, when known."""
        return ""

    def _close_http(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._token = None

    def health(self) -> dict[str, Any]:
        """``GET /api/v2/monitor/health`` (no authentication needed)."""
        resp = self._http().get("/api/v2/monitor/health", timeout=10)
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    def _http(self) -> httpx.Client:
        if self._client is None:
            # trust_env=False: never send 127.0.0.1 traffic through an HTTP proxy
            self._client = httpx.Client(base_url=self.base_url, timeout=60.0, trust_env=False)
        return self._client

    def token(self, refresh: bool = False) -> str:
        """A bearer token for the REST API (cached)."""
        if self._token and not refresh:
            return self._token
        resp = self._login(self._http())
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
        result: dict[str, Any] = self.get(f"/dags/{seg(dag_id)}")
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
                    self.get(f"/dags/{seg(dag_id)}/details")
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
        result: dict[str, Any] = self.patch(f"/dags/{seg(dag_id)}", json={"is_paused": False})
        return result

    def pause(self, dag_id: str) -> dict[str, Any]:
        """Pause ``dag_id``."""
        result: dict[str, Any] = self.patch(f"/dags/{seg(dag_id)}", json={"is_paused": True})
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
                run = self.post(f"/dags/{seg(dag_id)}/dagRuns", json=body)
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
        result: dict[str, Any] = self.get(f"/dags/{seg(dag_id)}/dagRuns/{seg(run_id)}")
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
        return self._paged(f"/dags/{seg(dag_id)}/dagRuns/{seg(run_id)}/taskInstances", "task_instances")

    def _ti_path(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        path = f"/dags/{seg(dag_id)}/dagRuns/{seg(run_id)}/taskInstances/{seg(task_id)}"
        return path if map_index < 0 else f"{path}/{map_index}"

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        """One task instance (current try)."""
        result: dict[str, Any] = self.get(self._ti_path(dag_id, run_id, task_id, map_index))
        return result

    def task_tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        """Every try of one task instance (history and current), oldest first."""
        path = f"/dags/{seg(dag_id)}/dagRuns/{seg(run_id)}/taskInstances/{seg(task_id)}"
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
            f"/dags/{seg(dag_id)}/dagRuns/{seg(run_id)}/taskInstances/{seg(task_id)}/xcomEntries/{quote(key, safe='')}"
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
        path = f"/dags/{seg(dag_id)}/dagRuns/{seg(run_id)}/taskInstances/{seg(task_id)}/logs/{try_number}"
        body = self.request(
            "GET",
            path,
            params={"map_index": map_index, "full_content": "true"},
            headers={"Accept": "application/json"},
        )
        if isinstance(body, str):
            return body
        return format_log_content(body.get("content") or [])

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
        self.put(f"/parseDagFile/{seg(self.file_token(file_path))}")

    def dag_versions(self, dag_id: str) -> list[dict[str, Any]]:
        """All stored versions of a DAG (``version_number``, ``bundle_version``, ...)."""
        return self._paged(f"/dags/{seg(dag_id)}/dagVersions", "dag_versions")
