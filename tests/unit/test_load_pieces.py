"""The load suite's offline parts: its plan, the StatsD parser, percentiles, the per-run checks."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from typing import Any

from tests.load import measure, plan
from tests.load.statsd_receiver import StatsdReceiver, parse


def test_the_plan_has_20_steps_7_of_them_mutating() -> None:
    steps = plan.steps()
    assert len(steps) == 20 == len({s["id"] for s in steps})
    assert {s["id"] for s in steps if s["tool"] in ("write_report", "notify", "publish_dashboard")} == set(
        plan.MUTATING
    )
    assert len(plan.MUTATING) == 7


def test_statsd_lines_and_receiver() -> None:
    packet = b"airflow.scheduler.scheduler_loop_duration:12.5|ms\nairflow.ti.start:1|c|@0.5\nbroken\nx:y|c"
    assert parse(packet, "airflow") == [("scheduler.scheduler_loop_duration", 12.5, "ms"), ("ti.start", 1.0, "c")]
    with StatsdReceiver() as receiver:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.sendto(b"airflow.scheduler.scheduler_loop_duration:40|ms", ("127.0.0.1", receiver.port))
        sock.close()
        deadline = time.monotonic() + 5
        while not receiver.values("scheduler.scheduler_loop_duration") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.values("scheduler.scheduler_loop_duration") == [40.0]
        assert receiver.values("scheduler.scheduler_loop_duration", since=time.time() + 60) == []
        assert receiver.airflow_env()["AIRFLOW__METRICS__STATSD_PORT"] == str(receiver.port)


def test_percentiles() -> None:
    assert measure.percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.5
    assert measure.percentile(list(map(float, range(101))), 95) == 95.0
    assert measure.percentile([7.0], 95) == 7.0


def _tis(run: measure.LoadRun, failed: str | None = None) -> list[dict[str, Any]]:
    out = []
    for i, step in enumerate(measure.STEP_IDS):
        ti = {"state": "failed" if step == failed else "success", "hostname": "h", "try_number": 1}
        ti.update(
            {"task_id": step, "map_index": -1}
            if run.kind == "compiled"
            else {"task_id": "attempt_1.steps", "map_index": i, "rendered_map_index": step}
        )
        ti.update(queued_when="2026-12-04T10:00:00Z", start_date="2026-12-04T10:00:02Z")
        out.append(ti)
    return out


def test_a_good_run_and_a_run_with_a_duplicate_and_a_lost_output() -> None:
    now = datetime.now(UTC)
    for dag_id in (plan.COMPILED, measure.AUTOMATION):
        run = measure.LoadRun(dag_id, "r1", now, state="success")
        tis = _tis(run)
        xcoms = {
            (dag_id, "r1", t["task_id"], t["map_index"]): {"effect_key": f"k_{measure.step_label(run, t)}"} for t in tis
        }
        ledger = [{"step_id": s, "idempotency_key": f"k_{s}"} for s in plan.MUTATING]
        report = {"status": "succeeded"}
        checks = measure.check_run(run, tis, xcoms, ledger, [{"outcome": "conflict"}], report)
        assert (checks.right, checks.duplicates, checks.lost, checks.absorbed) == (True, 0, 0, 1), run.problems
        delays, left_out = measure.queue_delays(run, tis)
        assert delays == [2.0] * 20 and left_out == 0

        bad = measure.LoadRun(dag_id, "r1", now, state="success")
        del xcoms[
            (
                dag_id,
                "r1",
                *next((t["task_id"], t["map_index"]) for t in tis if measure.step_label(run, t) == "combine"),
            )
        ]
        checks = measure.check_run(
            bad, tis, xcoms, [*ledger, {"step_id": "notify", "idempotency_key": "k2"}], [], report
        )
        assert (checks.right, checks.duplicates, checks.lost) == (True, 1, 1)
        assert any("duplicated" in p for p in bad.problems) and any("lost output: combine" in p for p in bad.problems)

    failed = measure.LoadRun(measure.AUTOMATION, "r2", now, state="failed")
    checks = measure.check_run(failed, _tis(failed, failed="publish"), {}, [], [], {"status": "failed"})
    assert not checks.right and len(failed.problems) >= 3
