"""End-to-end tests of the ``AirflowInstance`` harness against a real Airflow 3.3.

Each test drives real Airflow processes through the REST API; see conftest.py.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.harness.airflow_instance import AirflowApiError, AirflowInstance, AirflowInstanceError

pytestmark = pytest.mark.e2e

SMOKE_DAG = "smoke_retry_xcom"

# Shared instance for the tests below the smoke test: known files are only re-parsed on
# request (min_file_process_interval 600 s, no mtime-driven re-parse) so force_reparse is
# observable; new files are still discovered every 5 s.
# It also carries a connection, passed the AIRFLOW_CONN_* way.
SHARED_ENV = {
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
    "AIRFLOW__DAG_PROCESSOR__FILE_PARSING_SORT_MODE": "alphabetical",
    **AirflowInstance.connection_env("smoke_conn", {"conn_type": "http", "host": "example.com", "port": 8080}),
}


def test_smoke_run_retry_xcom_logs_and_clean_stop(airflow_instance_factory, tmp_path, e2e_timing):
    out_dir = tmp_path / "out"
    af: AirflowInstance = airflow_instance_factory(extra_env={"SMOKE_OUTPUT_DIR": str(out_dir)})
    e2e_timing("db migrate", af.timings["migrate"])
    e2e_timing("components up to healthy", af.timings["start"])

    health = af.health()
    assert health["scheduler"]["status"] == "healthy"
    assert health["dag_processor"]["status"] == "healthy"
    assert af.ui_url == f"http://127.0.0.1:{af.port}/"
    assert af.all_admins

    t0 = time.monotonic()
    dag = af.wait_for_dag(SMOKE_DAG, timeout=60)
    e2e_timing("dag visible after start", time.monotonic() - t0)
    assert dag["is_paused"] is False  # DAGS_ARE_PAUSED_AT_CREATION=False
    assert af.import_errors() == []

    t0 = time.monotonic()
    run_id = af.trigger(SMOKE_DAG, conf={"who": "e2e"})
    state = af.wait_for_run(SMOKE_DAG, run_id, timeout=180)
    e2e_timing("one run (retry + 4 tasks)", time.monotonic() - t0)
    assert state == "success"
    assert af.dag_run(SMOKE_DAG, run_id)["conf"] == {"who": "e2e"}

    tis = {(t["task_id"], t["map_index"]): t for t in af.task_instances(SMOKE_DAG, run_id)}
    assert set(tis) == {("flaky", -1), ("consume", -1), ("square", 0), ("square", 1)}
    assert {t["state"] for t in tis.values()} == {"success"}
    assert tis["flaky", -1]["try_number"] == 2
    assert tis["consume", -1]["try_number"] == 1
    tries = af.task_tries(SMOKE_DAG, run_id, "flaky")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]

    assert af.xcom(SMOKE_DAG, run_id, "flaky") == {"answer": 42, "try_number": 2}
    assert af.xcom(SMOKE_DAG, run_id, "consume") == 43
    assert [af.xcom(SMOKE_DAG, run_id, "square", map_index=i) for i in (0, 1)] == [4, 9]

    first_log = af.task_log(SMOKE_DAG, run_id, "flaky", try_number=1)
    assert "SMOKE: failing the first try on purpose" in first_log
    second_log = af.task_log(SMOKE_DAG, run_id, "flaky", try_number=2)
    assert "SMOKE_FLAKY_OK try_number=2" in second_log
    assert "SMOKE_CONSUMED {'answer': 42, 'try_number': 2}" in af.task_log(SMOKE_DAG, run_id, "consume", 1)

    safe_run = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    assert (out_dir / f"{safe_run}.txt").read_text() == "flaky ok on try 2\n"

    # Stopping leaves nothing behind: no process group of any component, no process of the instance.
    pgids = [af.pid_of(name) for name in af.component_names]
    assert all(pgids)
    assert len(af.instance_pids()) >= len(pgids)
    t0 = time.monotonic()
    af.stop()
    e2e_timing("stop", time.monotonic() - t0)
    for pgid in pgids:
        assert pgid is not None
        with pytest.raises(ProcessLookupError):
            os.killpg(pgid, 0)
    assert af.instance_pids() == []
    assert af.pid_of("scheduler") is None


def test_answer_hitl(airflow_instance_factory, e2e_timing):
    af = airflow_instance_factory(shared=True, copy_dags=True, extra_env=SHARED_ENV)
    af.wait_for_dag("smoke_hitl", timeout=60)
    t0 = time.monotonic()
    run_id = af.trigger("smoke_hitl")
    response = af.answer_hitl("smoke_hitl", run_id, "ask", ["yes"])
    assert response["chosen_options"] == ["yes"]
    assert af.wait_for_run("smoke_hitl", run_id, timeout=120) == "success"
    e2e_timing("HITL run incl. 2 s settle", time.monotonic() - t0)
    assert af.hitl_detail("smoke_hitl", run_id, "ask")["response_received"] is True
    assert af.xcom("smoke_hitl", run_id, "ask")["chosen_options"] == ["yes"]
    assert af.xcom("smoke_hitl", run_id, "after") == ["yes"]
    with pytest.raises(AirflowApiError) as exc_info:  # a second answer is refused
        af.patch(
            f"/dags/smoke_hitl/dagRuns/{run_id}/taskInstances/ask/-1/hitlDetails",
            json={"chosen_options": ["no"]},
        )
    assert exc_info.value.status_code == 409


def test_import_errors_new_file_force_reparse_and_dag_versions(airflow_instance_factory, e2e_timing):
    af = airflow_instance_factory(shared=True, copy_dags=True, extra_env=SHARED_ENV)

    broken = af.dags_folder / "smoke_broken.py"
    broken.write_text("from airflow.sdk import DAG\nraise ValueError('SMOKE broken dag file')\n")
    versioned = af.dags_folder / "smoke_versioned.py"
    versioned.write_text(_versioned_dag(["one"]))

    t0 = time.monotonic()
    af.wait_for_dag("smoke_versioned", timeout=60)
    e2e_timing("new file picked up", time.monotonic() - t0)
    deadline = time.monotonic() + 30
    while not (errors := [e for e in af.import_errors() if e["filename"].endswith("smoke_broken.py")]):
        assert time.monotonic() < deadline, "import error of smoke_broken.py never reported"
        time.sleep(0.5)
    assert "SMOKE broken dag file" in errors[0]["stack_trace"]

    run_id = af.trigger("smoke_versioned")
    assert af.wait_for_run("smoke_versioned", run_id, timeout=120) == "success"
    assert [v["version_number"] for v in af.dag_versions("smoke_versioned")] == [1]

    # Change the DAG; with the slow re-parse settings only force_reparse makes it visible soon.
    versioned.write_text(_versioned_dag(["one", "two"]))
    t0 = time.monotonic()
    af.force_reparse(versioned)
    deadline = time.monotonic() + 40
    while len(af.dag_versions("smoke_versioned")) < 2:
        assert time.monotonic() < deadline, "force_reparse did not produce a new DAG version"
        time.sleep(0.5)
    e2e_timing("force_reparse -> new version", time.monotonic() - t0)
    run_id = af.trigger("smoke_versioned")
    assert af.wait_for_run("smoke_versioned", run_id, timeout=120) == "success"
    assert sorted(t["task_id"] for t in af.task_instances("smoke_versioned", run_id)) == ["one", "two"]

    # A file that defined a DAG and now fails to import can be re-parsed on request too.
    versioned.write_text("from airflow.sdk import DAG\nraise ValueError('SMOKE versioned now broken')\n")
    af.force_reparse(versioned)
    deadline = time.monotonic() + 40
    while not any("SMOKE versioned now broken" in e["stack_trace"] for e in af.import_errors()):
        assert time.monotonic() < deadline, "force_reparse of a now-broken file had no effect"
        time.sleep(0.5)
    # ... but a file that never defined a DAG cannot be (Airflow answers 404).
    with pytest.raises(AirflowInstanceError, match="no DAG was ever parsed"):
        af.force_reparse(broken)
    broken.unlink()
    versioned.unlink()


def test_restart_scheduler_then_run_with_connection(airflow_instance_factory, e2e_timing):
    af = airflow_instance_factory(shared=True, copy_dags=True, extra_env=SHARED_ENV)
    af.wait_for_dag("smoke_sleep", timeout=60)
    af.wait_for_dag("smoke_noop", timeout=60)

    # A running task lives in a process group of its own inside the scheduler's session.
    sleep_run = af.trigger("smoke_sleep")
    af.wait_for_task_state("smoke_sleep", sleep_run, "sleep_long", ("running",), timeout=120)
    old_pid = af.pid_of("scheduler")
    assert old_pid is not None
    deadline = time.monotonic() + 30
    while not (task_pids := _session_pids_outside_group(old_pid)):
        assert time.monotonic() < deadline, "no task process found in the scheduler's session"
        time.sleep(0.2)

    t0 = time.monotonic()
    new_pid = af.restart_component("scheduler", sig=signal.SIGKILL)
    e2e_timing("scheduler kill -9 + restart", time.monotonic() - t0)
    assert new_pid != old_pid
    assert af.pid_of("scheduler") == new_pid
    with pytest.raises(ProcessLookupError):
        os.killpg(old_pid, 0)
    assert [pid for pid in task_pids if _alive(pid)] == []  # whole_session=True took the task down too

    run_id = af.trigger("smoke_noop")
    assert af.wait_for_run("smoke_noop", run_id, timeout=120) == "success"
    assert af.xcom("smoke_noop", run_id, "noop") == "noop done"
    assert af.xcom("smoke_noop", run_id, "conn_host") == "example.com"
    af.patch(f"/dags/smoke_sleep/dagRuns/{sleep_run}", json={"state": "failed"})


def _session_pids_outside_group(sid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _alive(int(entry)):
            try:
                if os.getsid(int(entry)) == sid and os.getpgid(int(entry)) != sid:
                    found.append(int(entry))
            except OSError:
                continue
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _postgres_available() -> bool:
    import shutil
    import subprocess

    if not shutil.which("psql"):
        return False
    probe = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "select 1"], capture_output=True, check=False
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _postgres_available(), reason="no PostgreSQL on 127.0.0.1:5432 (user postgres)")
def test_postgres_metadata_db(airflow_instance_factory, e2e_timing):
    """The same instance works on a PostgreSQL metadata DB (only the SQLAlchemy drivers are needed)."""
    import subprocess
    import uuid

    db = f"afi_e2e_{uuid.uuid4().hex[:10]}"

    def psql(sql: str) -> None:
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", sql], check=True, capture_output=True)

    psql(f"create database {db}")
    try:
        af = airflow_instance_factory(
            db_url=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{db}",
            extra_env=AirflowInstance.connection_env("smoke_conn", "http://pg.example.com"),
        )
        e2e_timing("db migrate (postgres)", af.timings["migrate"])
        af.wait_for_dag("smoke_noop", timeout=60)
        run_id = af.trigger("smoke_noop")
        assert af.wait_for_run("smoke_noop", run_id, timeout=120) == "success"
        assert af.xcom("smoke_noop", run_id, "conn_host") == "pg.example.com"
        af.stop()
    finally:
        psql(f"drop database if exists {db} with (force)")


def test_cli_main_starts_and_stops_on_sigterm(tmp_path: Path, e2e_timing):
    """``python -m tests.harness.airflow_instance`` comes up, prints the URL, stops cleanly."""
    import subprocess
    import sys

    import httpx

    repo_root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo_root), env.get("PYTHONPATH", "")) if p)
    log_path = tmp_path / "main.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.harness.airflow_instance",
                "--home",
                str(tmp_path / "home"),
                "--dags",
                str(Path(__file__).parent / "dags_smoke"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        t0 = time.monotonic()
        url = None
        while url is None:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() - t0 < 180, log_path.read_text()
            match = re.search(r"open (http://127\.0\.0\.1:\d+/)", log_path.read_text())
            url = match.group(1) if match else None
            time.sleep(0.5)
        e2e_timing("CLI main up", time.monotonic() - t0)
        assert httpx.get(url + "api/v2/monitor/health", trust_env=False).status_code == 200
        home = tmp_path / "home"
        assert len(_pids_with_cwd_in(home)) >= 3  # dag-processor, scheduler, api-server (+ children)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log_path.read_text()
        assert "Stopped." in log_path.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert _pids_with_cwd_in(tmp_path / "home") == []


def _pids_with_cwd_in(directory: Path) -> list[int]:
    """Live processes whose working directory is ``directory`` (components run in their home)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if Path(cwd) == directory and state != "Z":
            found.append(int(entry))
    return found


def _versioned_dag(task_ids: list[str]) -> str:
    lines = [
        "from airflow.providers.standard.operators.empty import EmptyOperator",
        "from airflow.sdk import DAG",
        "",
        'with DAG(dag_id="smoke_versioned", schedule=None, catchup=False) as dag:',
        *(f"    EmptyOperator(task_id={t!r})" for t in task_ids),
    ]
    return "\n".join(lines) + "\n"
