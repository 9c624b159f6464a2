"""A private ``redis-server`` as a Celery broker: the command line, and a ping that says it is ready.

Each Celery deployment of the harness runs its own Redis on a free loopback port, without
persistence, so a test may stop and restart its broker (a broker outage) without touching the
system Redis on 6379 or another test's. A restart loses every message that was in it, as a real
broker without persistence would.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from .errors import AirflowInstanceError


def redis_server_binary(explicit: str | None = None) -> str:
    """Path of ``redis-server`` (``explicit`` if given, else found on PATH)."""
    found = explicit or shutil.which("redis-server")
    if not found:
        raise AirflowInstanceError("redis-server not found on PATH (apt-get install redis-server)")
    return found


def redis_command(binary: str, port: int, workdir: Path) -> list[str]:
    """Command line of a loopback-only, in-memory Redis on ``port`` running in the foreground."""
    return [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--protected-mode", "yes",
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--dir", str(workdir),
        "--loglevel", "notice",
    ]  # fmt: skip


def redis_ping(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """Whether a Redis answers PING on ``host:port`` (it refuses commands while still loading)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False
