"""Cassettes: record real API exchanges once, replay them offline forever.

The recorder is a proxy: point the SDK at it, it forwards to the real API with the real
key, and writes each request/response pair to a JSON file. The key is never written.
"""

from __future__ import annotations

import difflib
import json
import os
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ._http import BaseFakeServer, RecordedRequest, Reply
from ._tokens import canonical_json

__all__ = ["VOLATILE_FIELDS", "Cassette", "CassettePlayer", "CassetteRecorder", "normalize_body"]

VOLATILE_FIELDS: tuple[str, ...] = ("metadata",)
"""Top-level request fields ignored when matching (they differ run to run, not in meaning)."""

CASSETTE_VERSION = 1
_KEPT_REQUEST_HEADERS = ("anthropic-version", "anthropic-beta")
_KEPT_RESPONSE_HEADERS = ("content-type", "request-id", "retry-after", "retry-after-ms", "x-should-retry")


def normalize_body(body: Any, ignore_fields: Iterable[str] = VOLATILE_FIELDS) -> Any:
    """The request body with volatile top-level fields removed (the cassette's match key)."""
    if isinstance(body, Mapping):
        ignored = set(ignore_fields)
        return {k: v for k, v in body.items() if k not in ignored}
    return body


def _keep_response_header(name: str) -> bool:
    name = name.lower()
    return name in _KEPT_RESPONSE_HEADERS or name.startswith("anthropic-")


@dataclass
class Cassette:
    """An ordered list of ``{"request": {...}, "response": {...}}`` interactions."""

    interactions: list[dict[str, Any]]

    @classmethod
    def load(cls, path: str | Path) -> Cassette:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, Mapping) or not isinstance(data.get("interactions"), list):
            raise ValueError(f"{path}: not a cassette (expected an object with an 'interactions' list)")
        return cls(list(data["interactions"]))

    def save(self, path: str | Path) -> None:
        """Atomic write, so a crash mid-recording never leaves a half cassette."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        payload = {"version": CASSETTE_VERSION, "interactions": self.interactions}
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2, ensure_ascii=False, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, target)


def _brief_diff(recorded: Any, received: Any, limit: int = 30) -> str:
    def lines(value: Any) -> list[str]:
        return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False).splitlines()

    diff = list(difflib.unified_diff(lines(recorded), lines(received), "recorded", "received", n=1, lineterm=""))
    if len(diff) > limit:
        diff = [*diff[:limit], f"... ({len(diff) - limit} more diff lines)"]
    return "\n".join(diff)


class CassettePlayer:
    """Serves a cassette: each request must equal the next recorded one (or any unused one)."""

    def __init__(
        self, cassette: Cassette, *, ordered: bool = True, ignore_fields: Iterable[str] = VOLATILE_FIELDS
    ) -> None:
        self.cassette = cassette
        self.ordered = ordered
        self.ignore_fields = tuple(ignore_fields)
        self._used: set[int] = set()
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        return len(self.cassette.interactions) - len(self._used)

    def _key(self, method: str, path: str, body: Any) -> str:
        return canonical_json([method, path, normalize_body(body, self.ignore_fields)])

    def reply(self, rec: RecordedRequest, server: BaseFakeServer) -> Reply:
        received_body = rec.body if rec.body is not None else rec.text
        key = self._key(rec.method, rec.path, received_body)
        with self._lock:
            candidates = [i for i in range(len(self.cassette.interactions)) if i not in self._used]
            if self.ordered:
                candidates = candidates[:1]
            for i in candidates:
                req = self.cassette.interactions[i]["request"]
                if self._key(req.get("method", "POST"), req.get("path", ""), req.get("body")) == key:
                    self._used.add(i)
                    return self._recorded_reply(self.cassette.interactions[i]["response"], server)
        if not candidates:
            message = f"cassette exhausted: no recorded interaction left for {rec.method} {rec.path}"
        else:
            req = self.cassette.interactions[candidates[0]]["request"]
            expected = [req.get("method"), req.get("path"), normalize_body(req.get("body"), self.ignore_fields)]
            got = [rec.method, rec.path, normalize_body(received_body, self.ignore_fields)]
            message = (
                f"cassette mismatch at interaction #{candidates[0]} "
                f"(ignoring {list(self.ignore_fields)}):\n{_brief_diff(expected, got)}"
            )
        reply = server.error_reply(500, "api_error", f"Fake Claude replay: {message}")
        reply.headers["x-should-retry"] = "false"
        return reply

    @staticmethod
    def _recorded_reply(response: Mapping[str, Any], server: BaseFakeServer) -> Reply:
        headers = {str(k).lower(): str(v) for k, v in (response.get("headers") or {}).items()}
        headers.setdefault("request-id", server.next_id("req"))
        if "body" in response:
            headers.setdefault("content-type", "application/json")
            body = json.dumps(response["body"], ensure_ascii=False).encode()
        else:
            body = str(response.get("body_text", "")).encode()
        return Reply(int(response.get("status", 200)), body, headers)


class CassetteRecorder(BaseFakeServer):
    """A recording proxy to ``upstream``; writes the cassette after every interaction."""

    def __init__(
        self,
        upstream: str,
        cassette_path: str | Path,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout: float = 600.0,
        ignore_fields: Iterable[str] = VOLATILE_FIELDS,
    ) -> None:
        super().__init__(host, port)
        self.upstream = upstream.rstrip("/")
        self.cassette_path = Path(cassette_path)
        self.api_key = api_key
        self.timeout = timeout
        self.ignore_fields = tuple(ignore_fields)
        self.cassette = Cassette([])
        # Local upstreams (tests) must not be sent through an environment proxy.
        local = urlsplit(self.upstream).hostname in {"127.0.0.1", "localhost", "::1"}
        handlers = [urllib.request.ProxyHandler({})] if local else []
        self._opener = urllib.request.build_opener(*handlers)

    def _forward_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        keep = ("content-type", "accept", "anthropic-version", "anthropic-beta", "user-agent")
        out = {k: v for k, v in headers.items() if k in keep}
        if self.api_key:
            out["authorization"] = f"Bearer {self.api_key}"  # what SDK 2.x sends for an API key
        else:
            out.update({k: v for k, v in headers.items() if k in ("x-api-key", "authorization")})
        return out

    def _handle(self, rec: RecordedRequest) -> Reply:
        url = self.upstream + rec.path + (f"?{rec.query}" if rec.query else "")
        data = rec.text.encode() if rec.method in ("POST", "PUT") else None
        request = urllib.request.Request(url, data=data, method=rec.method)
        for key, value in self._forward_headers(rec.headers).items():
            request.add_header(key, value)
        try:
            with self._opener.open(request, timeout=self.timeout) as resp:
                status, resp_headers, raw = resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as err:
            status, resp_headers, raw = err.code, dict(err.headers.items()), err.read()
        except OSError as err:
            reply = self.error_reply(502, "api_error", f"recorder could not reach {self.upstream}: {err}")
            reply.headers["x-should-retry"] = "false"
            return reply
        kept = {k.lower(): v for k, v in resp_headers.items() if _keep_response_header(k)}
        response: dict[str, Any] = {"status": status, "headers": kept}
        try:
            response["body"] = json.loads(raw)
        except ValueError:
            response["body_text"] = raw.decode("utf-8", errors="replace")
        request_record: dict[str, Any] = {
            "method": rec.method,
            "path": rec.path,
            "headers": {k: v for k, v in rec.headers.items() if k in _KEPT_REQUEST_HEADERS},
            "body": rec.body if rec.body is not None else rec.text,
        }
        with self._lock:
            self.cassette.interactions.append({"request": request_record, "response": response})
            self.cassette.save(self.cassette_path)
        return Reply(status, raw, kept)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.cassette = Cassette([])
