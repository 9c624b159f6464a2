"""The demo: a real Airflow (scheduler, dag-processor, api-server) running the example automations.

1. the compiled nightly plan ``nightly_orders_report`` (no model call at all);
2. the automation ``orders_assistant``, triggered with a goal through the REST API, planned by
   the offline Claude (or the real one when ANTHROPIC_API_KEY is set and --real-claude is given),
   approved through the REST API as a person would in the UI, executed step by step, reviewed;
3. ``orders_pipeline``, a DAG of your own with the automation as a task group between a task that
   writes its goal and a task that reads its report (approval off).

Then it leaves the UI up until Ctrl-C, or with --exit stops and exits 0 when all three runs succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
# The demo runs from a checkout; its Airflow harness is development tooling under tests/, not shipped.
sys.path.insert(0, str(ROOT))
GOAL = "Report October 2026 revenue by region, check the data quality, and tell #data-team."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exit", action="store_true", help="run to the end, stop Airflow and exit (for scripts)")
    parser.add_argument("--home", type=Path, default=ROOT / ".airflow-demo", help="AIRFLOW_HOME for the demo")
    parser.add_argument("--port", type=int, default=None, help="api-server/UI port (default: a free one)")
    parser.add_argument("--real-claude", action="store_true", help="use ANTHROPIC_API_KEY instead of the fake")
    parser.add_argument("--goal", default=GOAL, help="the goal typed into the trigger form")
    args = parser.parse_args()

    from airflow_claude.examples.orders import orders_connection_env
    from airflow_claude.testing import FakeClaude
    from tests.harness.airflow_instance import AirflowInstance

    home: Path = args.home.absolute()
    home.mkdir(parents=True, exist_ok=True)
    demo_dir = home / "demo"
    demo_dir.mkdir(exist_ok=True)
    fake = None
    if args.real_claude:
        key = os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            print("--real-claude needs ANTHROPIC_API_KEY", file=sys.stderr)
            return 2
        anthropic_conn = {"conn_type": "anthropic", "password": key}
    else:
        fake = FakeClaude(port=0).start()
        fake.load_script(ROOT / "airflow_claude" / "examples" / "demo_claude.json")
        anthropic_conn = {"conn_type": "anthropic", "host": fake.url, "password": "offline-demo-key"}
    env = {
        "AIRFLOW_CONN_ANTHROPIC_DEFAULT": json.dumps(anthropic_conn),
        "AIRFLOW_CLAUDE_DEMO_DIR": str(demo_dir),
        **orders_connection_env(demo_dir / "orders.db"),
    }
    instance = AirflowInstance(home=home, dags_folder=ROOT / "dags", extra_env=env, port=args.port, with_triggerer=True)
    print(f"Starting Airflow in {home} ...", flush=True)
    started = time.monotonic()
    instance.start()
    print(f"Airflow is up after {time.monotonic() - started:.0f}s: {instance.ui_url}", flush=True)
    ok = False
    try:
        ok = run_demo(instance, args.goal)
        if not args.exit:
            wait_for_ctrl_c(instance)
    finally:
        print("Stopping Airflow ...", flush=True)
        instance.stop()
        if fake is not None:
            fake.stop()
    return 0 if ok else 1


def run_demo(instance: object, goal: str) -> bool:
    from tests.harness.airflow_instance import AirflowInstance

    assert isinstance(instance, AirflowInstance)
    for dag_id in ("nightly_orders_report", "orders_assistant", "orders_pipeline"):
        instance.wait_for_dag(dag_id, timeout=120)
        instance.unpause(dag_id)
    # a logical date gives the run its data interval: the day before it, which the plan reports
    nightly = instance.trigger("nightly_orders_report", logical_date=datetime.now(UTC))
    interval = instance.dag_run("nightly_orders_report", nightly)
    print(
        f"Triggered nightly_orders_report ({nightly}): a reviewed plan file, no model call; it reports "
        f"{interval.get('data_interval_start')} .. {interval.get('data_interval_end')} through run references.",
        flush=True,
    )
    assistant = instance.trigger("orders_assistant", conf={"goal": goal, "require_approval": True})
    print(f"Triggered orders_assistant ({assistant}) with goal: {goal!r}", flush=True)
    print("Waiting for the plan to reach approval (attempt_1.approve) ...", flush=True)
    instance.answer_hitl("orders_assistant", assistant, "attempt_1.approve", ["Approve"], timeout=180)
    print("Approved through the REST API, as a person would under 'Required actions'.", flush=True)
    pipeline = instance.trigger("orders_pipeline", conf={"region": "EU"})
    print(
        f"Triggered orders_pipeline ({pipeline}): your own DAG, with the automation as the task group 'claude' "
        "between choose_goal and publish_summary.",
        flush=True,
    )
    states = {
        "nightly_orders_report": instance.wait_for_run("nightly_orders_report", nightly, timeout=300),
        "orders_assistant": instance.wait_for_run("orders_assistant", assistant, timeout=300),
        "orders_pipeline": instance.wait_for_run("orders_pipeline", pipeline, timeout=300),
    }
    report = instance.xcom("orders_assistant", assistant, "report") or {}
    print("\nResults")
    for dag_id, state in states.items():
        print(f"  {dag_id}: {state}")
    if report:
        print(f"  orders_assistant verdict: {report.get('verdict')} - {report.get('reason')}")
        print(f"  model calls: {len(report.get('model_calls', []))}, cost ${report.get('cost_usd')}")
        for entry in report.get("rounds", [])[-1:]:
            for step in entry.get("steps", []):
                print(f"    {step['id']:<24} {step['tool']:<18} {step['status']}")
    summary = instance.xcom("orders_pipeline", pipeline, "publish_summary") or {}
    if summary:
        print(
            f"  orders_pipeline: publish_summary read the report: {summary.get('status')}, ${summary.get('cost_usd')}"
        )
    page = f"{instance.base_url}/airflow-claude/runs/orders_assistant/{quote(assistant, safe='')}"
    detail = instance.request("GET", f"{instance.base_url}/airflow-claude/api/runs/orders_assistant/"
                              f"{quote(assistant, safe='')}")
    steps = [s for r in detail.get("rounds", []) for s in r.get("steps", [])]
    print(f"  its page: {len(steps)} steps, {detail.get('model_calls')} model calls, ${detail.get('cost_usd')}")
    print(f"\nWhere to look: {instance.ui_url}")
    print("  DAGs nightly_orders_report, orders_assistant and orders_pipeline (Grid view: one task instance per step)")
    print(f"  Claude runs (Browse menu): {instance.base_url}/airflow-claude/ ; this run: {page}")
    print("  on that page, 'Replay this plan' runs the same plan again with no model call (docs/ui.md)")
    print(f"  report files under {instance.home / 'demo' / 'reports'}")
    return all(state == "success" for state in states.values()) and bool(steps)


def wait_for_ctrl_c(instance: object) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("The UI stays up; press Ctrl-C to stop.", flush=True)
    while not stop.wait(1.0):
        pass


if __name__ == "__main__":
    sys.exit(main())
