"""The HTTP plumbing shared by the fake server and the cassette recorder.

A real socket (not a mocked transport) is used on purpose: the SDK's retry, timeout and
header handling is exercised exactly as in production, and other processes (an Airflow
worker) can reach the same server.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

__all__ = ["BaseFakeServer", "RecordedRequest", "Reply", "request_text"]

ADMIN_PREFIX = "/_fake/"
SECRET_HEADERS = frozenset({"x-api-key", "authorization"})


def _string_leaves(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from _string_leaves(v)
    elif isinstance(value, list):
        for item in value:
            yield from _string_leaves(item)


def request_text(text: str, body: Any) -> str:
    """Raw body plus every decoded string in it, so escaped secrets (\\n, \\u00e9) are still found."""
    return "\n".join([text, *_string_leaves(body)])


@dataclass
class RecordedRequest:
    """One request as the server saw it (``call_index`` counts requests per path, from 0)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    text: str
    time: float
    call_index: int
    status: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe view for the admin endpoint; credentials are redacted."""
        headers = {k: ("<redacted>" if k in SECRET_HEADERS else v) for k, v in self.headers.items()}
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": headers,
            "body": self.body,
            "text": self.text,
            "time": self.time,
            "call_index": self.call_index,
            "status": self.status,
        }


@dataclass
class Reply:
    """What to send back: status, body, headers, plus an optional delay or a dropped connection."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    disconnect: bool = False

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None, delay: float = 0.0) -> Reply:
        merged = {"content-type": "application/json", **(headers or {})}
        return cls(status, json.dumps(payload, ensure_ascii=False).encode(), merged, delay)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "FakeClaude/1.0"

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        owner = self.server.owner
        reply = owner._receive(self.command, self.path, headers, raw)
        if reply.delay > 0 and owner._stopping.wait(reply.delay):
            return  # server is stopping: drop the request rather than hang shutdown
        if reply.disconnect:
            self.close_connection = True
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request stderr logging; requests are recorded instead."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: BaseFakeServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)


class BaseFakeServer:
    """Start/stop, URL, request recording and the ``/_fake/`` admin endpoints."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._per_path: dict[str, int] = {}
        self._ids = itertools.count(1)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Self:
        """Bind and serve in a daemon thread; ``port=0`` picks a free port (see ``url``)."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _Server((self.host, self.port), self)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.name = f"{type(self).__name__}:{self.port}"
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; delayed replies still sleeping are abandoned."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def request_stop(self) -> None:
        """Ask ``serve_forever`` to return (safe from a signal handler)."""
        self._stopping.set()

    def serve_forever(self) -> None:
        """Block serving in the calling thread (the CLI uses this)."""
        self.start()
        try:
            while not self._stopping.wait(0.2):
                pass
        finally:
            self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL to hand to ``anthropic.Anthropic(base_url=...)``."""
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://{self.host}:{self.port}"

    # -- recording -------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every API request received, oldest first (admin calls excluded)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def all_request_text(self) -> str:
        """Everything clients sent in bodies; assert a secret is ``not in`` this."""
        return "\n".join(request_text(r.text, r.body) for r in self.requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()
            self._per_path.clear()

    def next_id(self, prefix: str) -> str:
        """Deterministic ids (``msg_fake_000001``) so snapshots stay stable across runs."""
        return f"{prefix}_fake_{next(self._ids):06d}"

    # -- dispatch --------------------------------------------------------------------------
    def _receive(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        split = urlsplit(target)
        path = split.path.rstrip("/") or "/"
        text = raw.decode("utf-8", errors="replace")
        body: Any = None
        if text:
            try:
                body = json.loads(text)
            except ValueError:
                body = None
        if path.startswith(ADMIN_PREFIX.rstrip("/")):
            return self._admin(method, path, body)
        with self._lock:
            index = self._per_path.get(path, 0)
            self._per_path[path] = index + 1
            rec = RecordedRequest(method, path, split.query, headers, body, text, time.time(), index)
            self._requests.append(rec)
        try:
            reply = self._handle(rec)
        except Exception as exc:  # a bug in a responder must surface in the test, not hang it
            reply = self.error_reply(500, "api_error", f"Fake Claude crashed: {type(exc).__name__}: {exc}")
            reply.headers["x-should-retry"] = "false"
        rec.status = reply.status
        return reply

    def _handle(self, rec: RecordedRequest) -> Reply:
        raise NotImplementedError

    def error_reply(
        self,
        status: int,
        error_type: str | None = None,
        message: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
        delay: float = 0.0,
    ) -> Reply:
        from ._script import error_body

        request_id = self.next_id("req")
        payload = error_body(status, error_type, message, request_id, details)
        return Reply.json(status, payload, {"request-id": request_id, **(headers or {})}, delay)

    def _admin(self, method: str, path: str, body: Any) -> Reply:
        if path == "/_fake/health":
            return Reply.json(200, {"ok": True, "server": type(self).__name__})
        if path == "/_fake/requests" and method == "GET":
            return Reply.json(200, [r.to_dict() for r in self.requests])
        if path == "/_fake/reset" and method == "POST":
            self.reset()
            return Reply.json(200, {"ok": True})
        return self.error_reply(404, "not_found_error", f"unknown admin endpoint {method} {path}")

    def reset(self) -> None:
        """Forget recorded requests (subclasses also drop their state)."""
        self.clear_requests()
