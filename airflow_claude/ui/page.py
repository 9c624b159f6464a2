"""The plugin's HTML: server-rendered, a little CSS, one small script; no build step.

Every value is escaped with :func:`html.escape` (goals, plan text and model output are data);
nothing is ever rendered by a template engine. The plan graph is an inline SVG laid out by
dependency level (:func:`airflow_claude.plan.graph.levels`). Links are built from ``base`` (the
plugin's mount path), so the pages work on their own and inside the Airflow UI's iframe.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any
from urllib.parse import quote

from airflow_claude.plan import graph
from airflow_claude.ui.models import RunDetail, RunSummary, StepView

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:16px;color:#1a202c;font-size:14px}
h1{font-size:20px;margin:0 0 12px}h2{font-size:16px;margin:20px 0 8px}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #e2e8f0;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f7fafc}code,.mono{font-family:ui-monospace,Menlo,monospace;font-size:12px}
.muted{color:#718096}.state{font-weight:600}.state-success,.state-succeeded{color:#2f855a}
.state-failed,.state-upstream_failed{color:#c53030}.state-running{color:#2b6cb0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px}dt{color:#718096}dd{margin:0}
button{padding:6px 12px;border:1px solid #2b6cb0;background:#ebf8ff;border-radius:4px;cursor:pointer}
.goal{white-space:pre-wrap}.out{white-space:pre-wrap;word-break:break-all;max-width:420px}
svg text{font-family:ui-monospace,Menlo,monospace;font-size:11px}
"""

_STATE_FILL = {
    "success": "#c6f6d5",
    "failed": "#fed7d7",
    "upstream_failed": "#feebc8",
    "running": "#bee3f8",
    "skipped": "#e2e8f0",
    "up_for_retry": "#fefcbf",
    "deferred": "#e9d8fd",
}

_REPLAY_SCRIPT = """
document.getElementById('replay-button').addEventListener('click', async function (event) {
  const button = event.currentTarget, out = document.getElementById('replay-result');
  button.disabled = true; out.textContent = 'Starting a replay...';
  try {
    const body = {source: {dag_id: button.dataset.dagId, run_id: button.dataset.runId},
                  plan_hash: button.dataset.planHash, plan: null, target_dag_id: null};
    const response = await fetch(button.dataset.url, {method: 'POST', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
    const answer = await response.json().catch(() => ({}));
    out.textContent = '';
    if (!response.ok) {
      out.textContent = 'Replay refused (' + response.status + '): ' + (answer.detail || ''); return;
    }
    const link = document.createElement('a');
    link.href = answer.url; link.id = 'replay-run-link'; link.textContent = answer.dag_id + ' / ' + answer.run_id;
    out.append('Started ', link);
  } catch (error) { out.textContent = 'Replay failed: ' + error; } finally { button.disabled = false; }
});
"""


def e(value: Any) -> str:
    """Escaped text of any value (None is an empty cell)."""
    return "" if value is None else escape(str(value), quote=True)


def run_url(base: str, dag_id: str, run_id: str) -> str:
    return f"{base}/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"


#: A run page reloads itself this often while its run is not finished, to follow the steps.
REFRESH_SECONDS = 10
_UNFINISHED = ("queued", "running")


def _page(title: str, body: str, script: str = "", refresh: int | None = None) -> str:
    tail = f"<script>{script}</script>" if script else ""
    reload = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>{reload}'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
        f"<body><main>{body}</main>{tail}</body></html>"
    )


def list_page(runs: list[RunSummary], base: str, dag_id: str | None = None) -> str:
    """The list: one row per automation or compiled-plan run the user may read, newest first."""
    rows = []
    for run in runs:
        rows.append(
            f'<tr class="run" data-dag-id="{e(run.dag_id)}" data-run-id="{e(run.run_id)}">'
            f"<td>{e(run.dag_id)}</td>"
            f'<td><a class="run-link" href="{e(run_url(base, run.dag_id, run.run_id))}" target="_self">'
            f"{e(run.run_id)}</a></td>"
            f'<td>{e(run.kind)}</td><td class="state state-{e(run.state)}">{e(run.state)}</td>'
            f'<td class="muted">{e(run.start_date)}</td><td class="goal">{e(run.goal)}</td>'
            f"<td>{e(run.verdict)}</td><td>{e(run.status)}</td><td>${e(run.cost_usd)}</td>"
            f"<td>{e(run.model_calls)}</td><td>{e(run.approver)}</td>"
            f'<td class="mono">{e(run.plan_id)}<br><span class="muted">{e((run.plan_hash or "")[:19])}</span></td></tr>'
        )
    heading = f"Claude runs of {dag_id}" if dag_id else "Claude runs"
    also = f' <a href="{e(base)}/" target="_self">all DAGs</a>' if dag_id else ""
    empty = "" if rows else '<p class="muted" id="no-runs">No automation or compiled-plan runs you may read.</p>'
    table = (
        '<table id="runs"><thead><tr><th>DAG</th><th>Run</th><th>Kind</th><th>State</th><th>Started</th><th>Goal</th>'
        "<th>Verdict</th><th>Status</th><th>Cost</th><th>Model calls</th><th>Approver</th><th>Plan</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return _page(heading, f"<h1>{e(heading)}{also}</h1>{empty}{table}")


def plan_svg(steps: list[StepView]) -> str:
    """The plan as an inline SVG in ``div#plan-graph``: one column per dependency level, edges from each producer."""
    deps = {s.id: s.depends_on for s in steps}
    levels = graph.levels(deps)
    placed = {sid for level in levels for sid in level}
    leftover = [s.id for s in steps if s.id not in placed]  # in a cycle: shown in a last column
    if leftover:
        levels.append(leftover)
    width, height, gap_x, gap_y = 170, 34, 60, 14
    position: dict[str, tuple[int, int]] = {}
    for col, level in enumerate(levels):
        for row, sid in enumerate(level):
            position[sid] = (10 + col * (width + gap_x), 10 + row * (height + gap_y))
    total_w = 20 + len(levels) * (width + gap_x)
    total_h = 20 + max((len(level) for level in levels), default=1) * (height + gap_y)
    state = {s.id: s.state for s in steps}
    parts = []
    for s in steps:
        for dep in s.depends_on:
            if dep in position and s.id in position:
                x1, y1 = position[dep]
                x2, y2 = position[s.id]
                parts.append(
                    f'<path class="edge" d="M{x1 + width},{y1 + height // 2} '
                    f"C{x1 + width + gap_x // 2},{y1 + height // 2} {x2 - gap_x // 2},{y2 + height // 2} "
                    f'{x2},{y2 + height // 2}" fill="none" stroke="#a0aec0" '
                    'marker-end="url(#arrow)"/>'
                )
    for sid, (x, y) in position.items():
        fill = _STATE_FILL.get(state.get(sid) or "", "#f7fafc")
        label = sid if len(sid) <= 22 else sid[:21] + "…"
        parts.append(
            f'<g class="node" data-step-id="{e(sid)}"><title>{e(sid)}: {e(state.get(sid) or "not started")}</title>'
            f'<rect x="{x}" y="{y}" width="{width}" height="{height}" rx="6" fill="{fill}" stroke="#4a5568"/>'
            f'<text x="{x + 8}" y="{y + height // 2 + 4}">{e(label)}</text></g>'
        )
    marker = (
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#a0aec0"/></marker></defs>'
    )
    return (
        f'<div id="plan-graph"><svg class="plan-graph" xmlns="http://www.w3.org/2000/svg" width="{total_w}" '
        f'height="{total_h}" '
        f'viewBox="0 0 {total_w} {total_h}" role="img" aria-label="plan graph">{marker}{"".join(parts)}</svg></div>'
    )


def _steps_table(detail: RunDetail) -> str:
    rows = []
    for rnd in detail.rounds:
        for s in rnd.steps:
            rows.append(
                f'<tr class="step" data-step-id="{e(s.id)}" data-step="{e(s.id)}" data-state="{e(s.state)}" '
                f'data-round="{rnd.round}">'
                f'<td>{rnd.round}</td><td class="mono">{e(s.id)}</td><td class="mono">{e(s.tool)}</td>'
                f'<td class="state state-{e(s.state)}">{e(s.state or "not started")}</td>'
                f'<td class="attempts">{s.attempts}</td><td class="idempotency-key mono">{e(s.idempotency_key)}</td>'
                f'<td class="ledger">{e(s.ledger)}</td><td class="queue">{e(s.queue)}</td>'
                f'<td class="output out mono">{e(s.output_summary)}</td></tr>'
            )
    return (
        '<table id="steps"><thead><tr><th>Round</th><th>Step</th><th>Tool</th><th>State</th><th>Attempts</th>'
        "<th>Idempotency key</th><th>Ledger</th><th>Queue</th><th>Output</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _calls_table(detail: RunDetail) -> str:
    rows = "".join(
        f'<tr class="call"><td>{e(c.purpose)}</td><td class="mono">{e(c.request_id)}</td><td>{e(c.model)}</td>'
        f"<td>{c.input_tokens}</td><td>{c.output_tokens}</td><td>{c.cache_read_input_tokens}</td>"
        f'<td class="call-cost">${e(c.cost_usd)}</td></tr>'
        for c in detail.calls
    )
    return (
        '<table id="calls"><thead><tr><th>Purpose</th><th>Request id</th><th>Model</th><th>Input tokens</th>'
        f"<th>Output tokens</th><th>Cache read</th><th>Cost</th></tr></thead><tbody>{rows}</tbody></table>"
        f'<p>Total: <strong id="cost-total">${e(detail.cost_usd)}</strong> over {len(detail.calls)} model call(s)</p>'
    )


def _version_chain(detail: RunDetail) -> str:
    items = []
    for v in detail.version_chain:
        notes = []
        if v.parent_plan_id:
            notes.append(f"re-plan of <code>{e(v.parent_plan_id)}</code>")
        if v.replan_reason:
            notes.append(f'because: <span class="goal">{e(v.replan_reason)}</span>')
        if v.created_by:
            notes.append(f"made by {e(v.created_by)}")
        if v.edited:
            notes.append(f"edited by {e(v.approved_by or 'someone')}")
        if v.approved_by:
            notes.append(f"approved by {e(v.approved_by)}")
        elif v.auto_approved:
            notes.append("approved by the policy")
        since = f"since {(v.changed_since or '')[:19]}: "
        changed = "".join(
            f'<li class="{kind}">{label}<code>{e(line)}</code></li>'
            for kind, label, lines in (("change", e(since), v.changes), ("edit", "edit: ", v.edits))
            for line in lines
        )
        items.append(
            f'<li class="version" data-round="{v.round}">round {v.round}: <code>{e(v.plan_id)}</code> '
            f'<span class="muted mono">{e((v.plan_hash or "")[:19])}</span> {"; ".join(notes)}'
            + (f'<ul class="changes">{changed}</ul>' if changed else "")
            + "</li>"
        )
    return f'<ol id="version-chain">{"".join(items)}</ol>'


def _compensation(detail: RunDetail) -> str:
    comp = detail.compensation
    undone = ", ".join(e(x) for x in comp.get("undone", [])) or "nothing"
    not_undone = ", ".join(e(x) for x in comp.get("not_undone", [])) or "nothing"
    return (
        f'<div id="compensation"><p>Undone: <span class="undone">{undone}</span></p>'
        f'<p>Could not undo: <span class="not-undone">{not_undone}</span></p></div>'
    )


def _replay(detail: RunDetail, base: str) -> tuple[str, str]:
    """The replay button (an automation run with its stored plan, or a compiled-plan run) and its script."""
    export = f"{base}/api/runs/{quote(detail.dag_id, safe='')}/{quote(detail.run_id, safe='')}/export"
    link = f'<a id="export-link" href="{e(export)}" download>Export (plan, cassette, report)</a>'
    if detail.kind == "automation" and detail.plan_exact and detail.plan_hash:
        what = "a new run of this exact plan, no model call; the approval policy applies"
    elif detail.kind == "plan" and detail.plan_hash:
        what = (
            "a new run of this DAG while it still runs this plan, with this run's data interval and params; "
            f"a changed plan file: <code>airflow-claude replay {e(detail.dag_id)} {e(detail.run_id)} "
            "--plans-dir DIR</code>"
        )
    else:
        return f'<p id="replay-result" role="status"></p><p>{link}</p>', ""
    button = (
        f'<button id="replay-button" type="button" data-url="{e(base)}/api/replay" '
        f'data-dag-id="{e(detail.dag_id)}" '
        f'data-run-id="{e(detail.run_id)}" data-plan-hash="{e(detail.plan_hash)}">Replay this plan</button> '
        f'<span class="muted">({what})</span>'
    )
    return f'<p>{button}</p><p id="replay-result" role="status"></p><p>{link}</p>', _REPLAY_SCRIPT


def run_page(detail: RunDetail, base: str) -> str:
    """The run page: summary, plan graph, steps, version chain, cost, compensation, replay and export."""
    final = detail.rounds[-1].steps if detail.rounds else []
    facts = [
        ("DAG", detail.dag_id),
        ("Run", detail.run_id),
        ("Kind", detail.kind),
        ("State", detail.state),
        ("Started", detail.start_date),
        ("Data interval", " to ".join(detail.data_interval) if detail.data_interval else None),
        ("Verdict", detail.verdict),
        ("Status", detail.status),
        ("Reason", detail.reason),
        ("Approver", detail.approver),
        ("Plan", f"{detail.plan_id or ''} {detail.plan_hash or ''}"),
    ]
    if not detail.plan_exact:
        facts.append(("Plan source", "rebuilt from the DAG for display (the plan file was not readable here)"))
    if detail.replay_of:
        facts.append(("Replay of", json.dumps(detail.replay_of, sort_keys=True)))
    facts_html = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts if v)
    replays = "".join(
        f'<li><a href="{e(run_url(base, r["dag_id"], r["run_id"]))}" target="_self">'
        f"{e(r['dag_id'])} / {e(r['run_id'])}</a></li>"
        for r in detail.replays
    )
    replay_html, script = _replay(detail, base)
    if detail.kind == "plan" and not detail.plan_id and not final:
        note = '<p id="not-claude" class="muted">This run is neither an automation nor a compiled plan run.</p>'
        body = f'<p><a href="{e(base)}/" target="_self">All Claude runs</a></p><h1>Run {e(detail.run_id)}</h1>{note}'
        return _page(f"Claude run {detail.run_id}", body)
    body = (
        f'<p><a href="{e(base)}/" target="_self">All Claude runs</a></p>'
        f'<h1>Run {e(detail.run_id)}</h1><p class="goal" id="goal">{e(detail.goal)}</p><dl>{facts_html}</dl>'
        f"<h2>Plan</h2>{plan_svg(final)}<h2>Steps</h2>{_steps_table(detail)}"
        f"<h2>Version chain</h2>{_version_chain(detail)}<h2>Model calls and cost</h2>{_calls_table(detail)}"
        f"<h2>Compensation</h2>{_compensation(detail)}<h2>Replay and export</h2>{replay_html}"
        + (f'<h2>Replays of this run</h2><ul id="replays">{replays}</ul>' if replays else "")
    )
    refresh = REFRESH_SECONDS if detail.state in _UNFINISHED else None
    return _page(f"Claude run {detail.run_id}", body, script, refresh)
