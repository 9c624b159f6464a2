"""Fixtures for end-to-end tests against a real, multi-process Airflow 3.

``airflow_instance_factory`` starts ``AirflowInstance`` objects: private ones
(own ``AIRFLOW_HOME`` under ``tmp_path``, stopped at test teardown) or, with
``shared=True``, one per configuration for the whole session (start-up costs
~10-15 s, so tests that do not care about isolation should share). Instances are
stopped even when a test fails; on failure the tails of the component logs are
attached to the test report. Timings are summarised at the end of the session.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.harness.airflow_instance import AirflowInstance

DAGS_SMOKE = Path(__file__).parent / "dags_smoke"

_INSTANCES_KEY = pytest.StashKey[list[AirflowInstance]]()
_TIMINGS_KEY = pytest.StashKey[list[tuple[str, str, float]]]()

InstanceFactory = Callable[..., AirflowInstance]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: runs a real Airflow (scheduler, dag-processor, api-server)")
    config.addinivalue_line(
        "markers", "celery: runs a real Airflow on the CeleryExecutor (private Redis, PostgreSQL, Celery workers)"
    )
    config.stash[_TIMINGS_KEY] = []


def record_timing(config: pytest.Config, test: str, what: str, seconds: float) -> None:
    """Remember a duration for the end-of-session 'e2e timings' summary."""
    config.stash[_TIMINGS_KEY].append((test, what, seconds))


@pytest.fixture
def e2e_timing(request: pytest.FixtureRequest) -> Callable[[str, float], None]:
    """``e2e_timing(what, seconds)``: record a duration for the session summary and the junit XML."""

    def record(what: str, seconds: float) -> None:
        record_timing(request.config, request.node.nodeid, what, seconds)
        request.node.user_properties.append((f"seconds_{what}", round(seconds, 2)))

    return record


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    timings = config.stash.get(_TIMINGS_KEY, [])
    if not timings:
        return
    terminalreporter.section("e2e timings")
    for test, what, seconds in timings:
        terminalreporter.write_line(f"{seconds:7.1f}s  {what:<28} {test}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    if report.failed:
        for instance in item.stash.get(_INSTANCES_KEY, []):
            report.sections.append((f"Airflow component logs ({instance.home})", instance.log_tails(60)))
    return report


def _start(instance: AirflowInstance, config: pytest.Config, test: str) -> AirflowInstance:
    t0 = time.monotonic()
    instance.start()
    record_timing(config, test, "instance start (incl. migrate)", time.monotonic() - t0)
    return instance


@pytest.fixture(scope="session")
def _shared_airflow_instances(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, AirflowInstance]]:
    instances: dict[str, AirflowInstance] = {}
    yield instances
    for instance in instances.values():
        instance.stop()


@pytest.fixture
def airflow_instance_factory(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    _shared_airflow_instances: dict[str, AirflowInstance],
) -> Iterator[InstanceFactory]:
    """Factory ``make(dags_folder=DAGS_SMOKE, *, shared=False, copy_dags=False, **kwargs)``.

    Starts and returns an ``AirflowInstance``; ``kwargs`` go to its constructor
    (``extra_env``, ``with_triggerer``, ``db_url``...). ``copy_dags`` copies the
    DAG folder first so the test may add or modify files. ``shared`` reuses a
    session-wide instance with the same arguments.
    """
    private: list[AirflowInstance] = []
    used: list[AirflowInstance] = []
    request.node.stash[_INSTANCES_KEY] = used

    def make(
        dags_folder: Path = DAGS_SMOKE,
        *,
        shared: bool = False,
        copy_dags: bool = False,
        **kwargs: Any,
    ) -> AirflowInstance:
        key = json.dumps([str(dags_folder), copy_dags, _jsonable(kwargs)], sort_keys=True)
        if shared and key in _shared_airflow_instances:
            instance = _shared_airflow_instances[key]
            used.append(instance)
            return instance
        base = tmp_path_factory.mktemp("airflow") if shared else tmp_path / f"airflow{len(private)}"
        folder = Path(dags_folder)
        if copy_dags:
            folder = base / "dags"
            shutil.copytree(dags_folder, folder, ignore=shutil.ignore_patterns("__pycache__"))
        instance = AirflowInstance(home=base / "home", dags_folder=folder, **kwargs)
        used.append(instance)
        if not shared:
            private.append(instance)
        _start(instance, request.config, request.node.nodeid)
        if shared:
            _shared_airflow_instances[key] = instance
        return instance

    yield make
    for instance in private:
        instance.stop()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)
