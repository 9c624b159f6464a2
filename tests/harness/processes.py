"""Process supervision primitives: ports, /proc, process groups, signals, log tails.

Processes are only ever signalled by a process-group id or pid the caller identified as its
own; nothing here looks processes up by name.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any


@dataclass
class Component:
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


def proc_stat(pid: int) -> tuple[str, int, int, int] | None:
    """Return ``(state, ppid, pgid, sid)`` of ``pid`` from /proc, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces/parens.
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[3])


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    stat = proc_stat(pid)
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


def all_pids() -> Iterator[int]:
    try:
        entries = os.listdir("/proc")
    except OSError:  # pragma: no cover - non-Linux
        return
    for entry in entries:
        if entry.isdigit():
            yield int(entry)


def group_pids(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    result = []
    for pid in all_pids():
        stat = proc_stat(pid)
        if stat is not None and stat[2] == pgid and stat[0] not in ("Z", "X"):
            result.append(pid)
    return result


def group_alive(pgid: int) -> bool:
    if Path("/proc").is_dir():
        return bool(group_pids(pgid))
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


def killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def kill(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


_ACCESS_LOG_OK = re.compile(r"\[http\.access\].*status_code=(2|3)\d\d")


def tail_of(path: Path, lines: int, skip_ok_access_log: bool = False) -> str:
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
