"""A local OpenLineage HTTP endpoint for tests: stores every event POSTed to it.

Point Airflow's OpenLineage provider at it with::

    AIRFLOW__OPENLINEAGE__TRANSPORT='{"type": "http", "url": "<receiver.url>", "endpoint": "api/v1/lineage"}'

Events are kept in arrival order, decoded, beside their raw body text (to check that a secret
appears nowhere, however it might have been encoded).
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LineageReceiver:
    """``with LineageReceiver() as receiver:`` serves on 127.0.0.1, on a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._bodies: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                text = raw.decode("utf-8", errors="replace")
                try:
                    event = json.loads(text)
                except ValueError:
                    event = {"_undecodable": text}
                with receiver._lock:
                    receiver._bodies.append(text)
                    receiver._events.append(event)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="lineage-receiver", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def transport_env(self, namespace: str = "airflow-claude-e2e") -> dict[str, str]:
        """The environment that makes Airflow's OpenLineage provider send here."""
        transport = {"type": "http", "url": self.url, "endpoint": "api/v1/lineage"}
        return {"AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport), "AIRFLOW__OPENLINEAGE__NAMESPACE": namespace}

    def start(self) -> LineageReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LineageReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)

    def bodies(self) -> list[str]:
        with self._lock:
            return list(self._bodies)

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], count: int = 1, timeout: float = 60.0
    ) -> list[dict[str, Any]]:
        """The events matching ``predicate`` once there are at least ``count`` of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.events() if predicate(e)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                seen = sorted({f"{e.get('eventType')} {e.get('job', {}).get('name')}" for e in self.events()})
                raise AssertionError(
                    f"{len(found)} of {count} matching lineage events after {timeout:.0f}s; seen: {seen}"
                )
            time.sleep(0.25)
