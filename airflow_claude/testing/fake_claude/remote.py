"""Drive a standalone fake server (another process) through its ``/_fake/`` admin endpoints."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._http import request_text

__all__ = ["RemoteFakeClaude"]


class RemoteFakeClaude:
    """Scripting and inspection for a fake started with ``python -m ...fake_claude``.

    An Airflow worker may talk to the fake from another process; the test process still
    needs to load rules and read what was sent, so those go over HTTP too.
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        with self._opener.open(request, timeout=self.timeout) as resp:
            return json.loads(resp.read())

    def health(self) -> bool:
        return bool(self._call("GET", "/_fake/health").get("ok"))

    def requests(self) -> list[dict[str, Any]]:
        """Recorded requests as dicts (``method``, ``path``, ``headers``, ``body``, ``text``, ...)."""
        result: list[dict[str, Any]] = self._call("GET", "/_fake/requests")
        return result

    def all_request_text(self) -> str:
        return "\n".join(request_text(r["text"], r["body"]) for r in self.requests())

    def load_script(self, source: str | Path | Mapping[str, Any] | Sequence[Any], *, append: bool = False) -> int:
        """Replace (or extend) the server's rules; callables cannot cross processes."""
        data: Any = source
        if isinstance(source, (str, Path)):
            data = json.loads(Path(source).read_text(encoding="utf-8"))
        rules = data.get("rules", []) if isinstance(data, Mapping) else list(data)
        return int(self._call("POST", "/_fake/script", {"rules": rules, "append": append})["loaded"])

    def rules(self) -> list[str]:
        result: list[str] = self._call("GET", "/_fake/rules")
        return result

    def reset(self) -> None:
        self._call("POST", "/_fake/reset", {})
