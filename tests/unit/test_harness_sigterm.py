"""A test run stopped with SIGTERM (``timeout``, ``kill``) must still stop the harness's Airflow.

The components run in their own process groups, so nothing else stops them: the harness's
atexit hook has to run, and Python's default SIGTERM skips it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # the child imports the harness from tests/

_CHILD = """
import atexit, os, signal, sys, time
from pathlib import Path
from tests.harness.airflow_instance import exit_cleanly_on_sigterm
marker = Path(sys.argv[1])
atexit.register(marker.write_text, "atexit ran")
if sys.argv[2] == "install":
    assert exit_cleanly_on_sigterm()
    assert not exit_cleanly_on_sigterm()  # the handler is no longer the default: left alone
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(30)
"""


@pytest.mark.parametrize(("mode", "returncode", "cleaned_up"), [("install", -2, True), ("default", -15, False)])
def test_sigterm_runs_the_exit_hooks(tmp_path: Path, mode: str, returncode: int, cleaned_up: bool) -> None:
    marker = tmp_path / "marker"
    done = subprocess.run([sys.executable, "-c", _CHILD, str(marker), mode], cwd=ROOT, timeout=60, check=False)
    assert done.returncode == returncode  # -2: an uncaught KeyboardInterrupt ends Python with SIGINT, after atexit
    assert marker.exists() is cleaned_up


def test_a_handler_already_set_is_kept(tmp_path: Path) -> None:
    child = """
import signal
from tests.harness.airflow_instance import exit_cleanly_on_sigterm
signal.signal(signal.SIGTERM, signal.SIG_IGN)
assert not exit_cleanly_on_sigterm()
assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
"""
    subprocess.run([sys.executable, "-c", child], cwd=ROOT, timeout=60, check=True)
