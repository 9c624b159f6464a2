"""A UDP StatsD receiver on 127.0.0.1: every metric line a real Airflow sends, with the time it arrived.

Point Airflow at it with ``[metrics] statsd_on``, ``statsd_host`` and ``statsd_port`` (see
:meth:`StatsdReceiver.airflow_env`); read timings back with :meth:`values`.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    at: float  # time.time() when the packet arrived
    name: str  # without the prefix
    value: float
    kind: str  # ms | c | g | s


def parse(packet: bytes, prefix: str) -> list[tuple[str, float, str]]:
    """``name:value|kind[|@rate][|#tags]`` lines of one packet; the prefix is stripped, bad lines skipped."""
    out = []
    for line in packet.decode("utf-8", "replace").splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split("|")
        if len(parts) < 2:
            continue
        try:
            value = float(parts[0])
        except ValueError:
            continue
        out.append((name.removeprefix(prefix + "."), value, parts[1]))
    return out


@dataclass
class StatsdReceiver:
    prefix: str = "airflow"
    samples: list[Sample] = field(default_factory=list)
    _sock: socket.socket | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> StatsdReceiver:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.5)
        self._thread = threading.Thread(target=self._serve, name="statsd-receiver", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        sock, self._sock = self._sock, None
        if self._thread:
            self._thread.join(5)
        if sock:
            sock.close()

    @property
    def port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    def airflow_env(self) -> dict[str, str]:
        return {
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(self.port),
            "AIRFLOW__METRICS__STATSD_PREFIX": self.prefix,
        }

    def _serve(self) -> None:
        while self._sock is not None:
            sock = self._sock
            try:
                packet = sock.recv(65535)
            except (TimeoutError, OSError):
                continue
            now = time.time()
            with self._lock:
                self.samples.extend(Sample(now, n, v, k) for n, v, k in parse(packet, self.prefix))

    def values(self, name: str, since: float = 0.0, until: float = float("inf")) -> list[float]:
        """Values of metric ``name`` that arrived in ``[since, until]`` (time.time())."""
        with self._lock:
            return [s.value for s in self.samples if s.name == name and since <= s.at <= until]
