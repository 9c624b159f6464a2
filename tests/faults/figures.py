"""The figures of the fault suite: each run measured from Airflow's REST API and the effects ledger; the table."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from tests.harness.airflow_instance import AirflowApiError

from . import effects
from .faults import AUTOMATION, COMPILED
from .harness import COMPENSABLE, PLAN_STEPS, REFUSAL_TEXT, Environment, Run, _api


def _xcom(
    env: Environment, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
) -> Any:
    try:
        return _api(lambda: env.airflow.xcom(dag_id, run_id, task_id, key=key, map_index=map_index))
    except AirflowApiError as exc:
        if exc.status_code == 404:
            return None
        raise


def measure(env: Environment, run: Run) -> None:
    """Fill ``run.checks`` (the figures) and ``run.problems`` (what broke a promise)."""
    dag_id, run_id = run.fault.dag_id, run.run_id
    tis = _api(lambda: env.airflow.task_instances(dag_id, run_id))
    fx = effects.effects_of(env.effects_url, dag_id, run_id)
    fired = effects.fired_of(env.effects_url, dag_id, run_id)
    injected = len(fired) + env.claude.served.get(f"[case={run.fault.name}#{run.index}]", 0)
    if run.fault.name != "none" and not injected:
        run.problems.append("the fault was never injected: this run proves nothing")
    attempts = effects.attempts_of(env.effects_url, dag_id, run_id)
    by_step: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in fx:
        by_step[row["step_id"]].append(row)
    tries_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in attempts:
        tries_of[row["step_id"]].append(row)

    # tool steps: task instance per step id (compiled: task id; run-time plan: mapped index label)
    steps: dict[str, dict[str, Any]] = {}
    for ti in tis:
        if dag_id == COMPILED and (ti["task_id"] in PLAN_STEPS or ti["task_id"].startswith("saga.undo_")):
            steps[ti["task_id"].removeprefix("saga.")] = ti
        elif dag_id == AUTOMATION and ti["map_index"] >= 0:
            label = ti.get("rendered_map_index") or f"{ti['task_id']}[{ti['map_index']}]"
            if re.fullmatch(r"attempt_\d+\.steps", ti["task_id"]):
                steps[label] = ti
            elif ti["task_id"] == "saga.undo":
                steps[label.replace("undo ", "undo_", 1)] = ti

    duplicates = sum(len(rows) - 1 for rows in by_step.values() if len(rows) > 1)
    for step_id, rows in by_step.items():
        if len(rows) > 1:
            run.problems.append(
                f"duplicated effect: step {step_id} has {len(rows)} rows, keys {[r['idempotency_key'] for r in rows]}"
            )

    lost = 0
    replays = 0
    for step_id, ti in sorted(steps.items()):
        if ti["state"] != "success":
            continue
        output = _xcom(env, dag_id, run_id, ti["task_id"], map_index=ti["map_index"])
        if output is None:
            lost += 1
            run.problems.append(f"lost output: step {step_id} succeeded without a return_value")
            continue
        rows = by_step.get(step_id, [])
        key = output.get("effect_key") or (output.get("result") or {}).get("undo_key") or output.get("undo_key")
        if rows and key != rows[0]["idempotency_key"]:
            lost += 1
            run.problems.append(
                f"output of {step_id} names effect {key}, the ledger holds {rows[0]['idempotency_key']}"
            )
        if rows:
            stamp = _xcom(
                env, dag_id, run_id, ti["task_id"], key="airflow_claude_provenance", map_index=ti["map_index"]
            )
            if not stamp or stamp.get("idempotency_key") != rows[0]["idempotency_key"]:
                lost += 1
                run.problems.append(f"provenance of {step_id} does not name its effect's key")
            if int(ti["try_number"]) > len(tries_of.get(step_id, [])):
                log = _api(
                    lambda ti=ti: env.airflow.task_log(dag_id, run_id, ti["task_id"], ti["try_number"], ti["map_index"])
                )
                replays += "step.replayed" in log
    for step_id in by_step:
        ti = steps.get(step_id)
        if ti is None or ti["state"] != "success":
            lost += 1
            run.problems.append(f"effect of step {step_id} exists but its task ended {ti and ti['state']}: no output")

    # the terminal state, and what it must say
    right = run.state == run.fault.expected
    if not right:
        run.problems.append(f"run ended {run.state}, expected {run.fault.expected}")
    saga: dict[str, Any] = {}
    if dag_id == AUTOMATION:
        report = _xcom(env, dag_id, run_id, "report", key="report") or {}
        saga = {"not_undone": (report.get("compensation") or {}).get("not_undone")}
        wanted = "succeeded" if run.fault.expected == "success" else "failed"
        if report.get("status") != wanted:
            right = False
            run.problems.append(f"report status {report.get('status')!r}, expected {wanted!r}")
        if run.fault.name == "refusal" and REFUSAL_TEXT not in str(report.get("reason")):
            right = False
            run.problems.append(f"the report does not give the refusal as the reason: {report.get('reason')!r}")
    elif run.state == "failed":
        saga = _xcom(env, dag_id, run_id, "saga.outcome", key="outcome") or {}
        if saga.get("failed_steps") != ["publish"]:
            right = False
            run.problems.append(f"saga outcome names failed steps {saga.get('failed_steps')}, expected ['publish']")
    compensable = compensated = 0
    finished = [s for s in COMPENSABLE if steps.get(s, {}).get("state") == "success"]
    if run.state == "failed" and finished:
        compensable = 1
        undone = all(by_step.get(s) and by_step[s][0]["undone_by"] for s in finished)
        undo_at = [by_step.get(f"undo_{s}", [{}])[0].get("at") for s in reversed(finished)]
        in_order = all(undo_at) and undo_at == sorted(undo_at)  # the later effect is undone first
        compensated = int(bool(undone and in_order and not saga.get("not_undone")))
        if not compensated:
            run.problems.append(
                f"not fully compensated: finished {finished}, undone={undone}, in reverse order={in_order}, "
                f"saga says {saga}"
            )
    run.checks = {
        "injected": injected,
        "right": int(right),
        "duplicates": duplicates,
        "lost": lost,
        "compensable": compensable,
        "compensated": compensated,
        "retries": sum(max(0, int(t["try_number"] or 0) - 1) for t in tis),
        "absorbed": sum(1 for a in attempts if a["outcome"] == "conflict"),
        "interrupted": sum(1 for a in attempts if a["outcome"] is None),
        "replays": replays,
        "effects": len(fx),
    }


# ------------------------------------------------------------------ the table

COLUMNS = (
    ("runs", "runs"),
    ("injected", "faults injected"),
    ("right", "right terminal state"),
    ("duplicates", "duplicated effects"),
    ("lost", "lost outputs"),
    ("compensated", "failed runs fully compensated"),
    ("retries", "Airflow retries"),
    ("absorbed", "writes absorbed by the key"),
    ("interrupted", "attempts that never wrote"),
    ("replays", "ledger replays"),
)


def totals(runs: list[Run]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for run in runs:
        out["runs"] += 1
        for key, value in run.checks.items():
            out[key] += value
    return out


def table(runs: list[Run]) -> str:
    header = "| fault | expected | " + " | ".join(title for _, title in COLUMNS) + " |"
    lines = [header, "|---|---|" + "---:|" * len(COLUMNS)]
    for name in dict.fromkeys(r.fault.name for r in runs):  # in the order the runs were made (phase by phase)
        mine = [r for r in runs if r.fault.name == name]
        lines.append(_row(f"`{name}`", mine[0].fault.expected, totals(mine)))
    lines.append(_row("**all**", "", totals(runs)))
    return "\n".join(lines)


def _row(name: str, expected: str, t: dict[str, int]) -> str:
    cells = []
    for key, _ in COLUMNS:
        if key == "right":
            cells.append(f"{t['right']}/{t['runs']}")
        elif key == "compensated":
            cells.append(f"{t['compensated']}/{t['compensable']}" if t["compensable"] else "-")
        else:
            cells.append(str(t[key]))
    return f"| {name} | {expected} | " + " | ".join(cells) + " |"
