"""The wheel users get works on its own: built, installed in a fresh venv with only its declared
dependencies, every module it ships imports.

This catches what the editable dev install hides: a module importing something only the dev
extras bring (``httpx``, ``pytest``), a data file missing from the wheel, test code shipped.
Slow (an Airflow install, about a minute with pip's cache), so it is one test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]

# Run in the fresh venv, away from the checkout: imports every module named on stdin, prints failures.
_IMPORT_ALL = """
import importlib, json, sys
failures = {}
for name in sys.stdin.read().split():
    try:
        importlib.import_module(name)
    except BaseException as exc:
        failures[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(failures))
"""


def _run(args: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{args[:4]} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def _shipped_modules(wheel: Path) -> list[str]:
    names = zipfile.ZipFile(wheel).namelist()
    return sorted(
        name[: -len(".py")].replace("/", ".").removesuffix(".__init__")
        for name in names
        if name.endswith(".py") and name.startswith("airflow_claude/")
    )


@pytest.mark.timeout(1800)
def test_the_wheel_installs_with_its_declared_dependencies_and_every_module_imports(
    tmp_path: Path, e2e_timing: Callable[[str, float], None]
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow-home")
    t0 = time.monotonic()
    _run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(tmp_path / "dist")], REPO, env)
    (wheel,) = (tmp_path / "dist").glob("airflow_claude-*.whl")
    e2e_timing("wheel build", time.monotonic() - t0)

    shipped = zipfile.ZipFile(wheel).namelist()
    assert not [name for name in shipped if name.startswith("tests/")], "test code is shipped"
    assert "airflow_claude/plan/plan.schema.json" in shipped
    modules = _shipped_modules(wheel)
    assert "airflow_claude.testing.fake_claude.server" in modules

    t0 = time.monotonic()
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    python = str(venv / "bin" / "python")
    _run([python, "-m", "pip", "install", "-q", str(wheel)], tmp_path, env)  # its declared dependencies only
    e2e_timing("fresh venv + install", time.monotonic() - t0)
    _run([python, "-m", "pip", "check"], tmp_path, env)

    def import_all() -> dict[str, str]:
        failures: dict[str, str] = json.loads(_run([python, "-c", _IMPORT_ALL], tmp_path, env, " ".join(modules)))
        return failures

    t0 = time.monotonic()
    # Only the pytest plugin needs more than the core dependencies: pytest, declared as the `testing` extra.
    assert import_all() == {
        "airflow_claude.testing.pytest_plugin": "ModuleNotFoundError: No module named 'pytest'",
    }
    _run([python, "-m", "pip", "install", "-q", f"{wheel}[testing]"], tmp_path, env)
    assert import_all() == {}
    e2e_timing(f"import {len(modules)} modules", time.monotonic() - t0)
