"""The ``report`` task: the run report (XCom and task log): plans and versions, steps, verdict, tokens, cost.

It ends every run. In a user's DAG, tasks after the automation read it (its return value, or
XCom ``report``, which is kept when the run fails).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_claude.automation.contracts import (
    COMMITTED_KEY,
    GOAL_KEY,
    OUTCOME_KEY,
    REPORT_KEY,
    ROUTES_KEY,
    UNDO_RECORD_KEY,
    USAGE_KEY,
    CommittedPlan,
    Outcome,
    Proposal,
    Report,
    RoundReview,
    UndoRecord,
    UndoTicket,
    Usage,
    pull,
    push,
)
from airflow_claude.automation.memory import remember
from airflow_claude.automation.replay import replay_of_run
from airflow_claude.automation.task import AutomationTask
from airflow_claude.observability.records import emit
from airflow_claude.plan.run_fields import run_values_from_context
from airflow_claude.ui.links import RunPageLink

_TOKENS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


class ReportOperator(AutomationTask):
    """Write the run report; fail the task (and so the run) when the automation failed."""

    ui_color = "#d8f0d8"
    operator_extra_links = (RunPageLink(),)  # "Claude run": the run page of the plugin

    def execute(self, context: Any) -> dict[str, Any]:
        automation, ti = self.automation, context["ti"]
        rounds: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        for r in range(1, automation.rounds + 1):
            round_entry, round_calls = self._round(context, r)
            calls.extend(round_calls)
            if round_entry is not None:
                rounds.append(round_entry)
        final = rounds[-1] if rounds else {"verdict": "planning_failed", "reason": "no plan was made"}
        status = self._status(final)
        goal = ti.xcom_pull(task_ids=automation.task("plan", 1), key=GOAL_KEY)  # masked by the plan task
        report = Report(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            automation_id=automation.id,
            goal=goal,
            run=run_values_from_context(context),
            status=status,
            verdict=final.get("verdict"),
            reason=final.get("reason"),
            rounds=rounds,
            version_chain=[f"{r['plan_id']}@{r['plan_hash'][:19]}" for r in rounds if r.get("plan_id")],
            model_calls=calls,
            tokens={key: sum(int(c.get(key, 0)) for c in calls) for key in _TOKENS},
            cost_usd=str(sum((Decimal(c["cost_usd"]) for c in calls), Decimal(0))),
            budget_usd=str(automation.budget(context, automation.model or "").limit),
            compensation=self._compensation(context),
            replay_of=self._replay_of(context),
        )
        self._log_report(report)
        self._remember(report)
        value = push(ti, REPORT_KEY, report)  # kept when the run fails, unlike a return value
        if status == "failed":
            raise AirflowFailException(f"automation ended with verdict '{report.verdict}': {report.reason}")
        return value

    def _round(self, context: Any, r: int) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        usage = [self.pull(context, Usage, name, key=USAGE_KEY, round_number=r) for name in ("plan", "review")]
        calls = [c for u in usage if u is not None for c in u.per_call]
        proposal = self.pull(context, Proposal, "plan", round_number=r)
        if proposal is None:
            outcome = self.pull(context, Outcome, "plan", key=OUTCOME_KEY, round_number=r)
            if outcome is None and usage[0] is None:
                return None, calls
            verdict = outcome.verdict if outcome else "planning_failed"
            reason = outcome.reason if outcome else (usage[0].error if usage[0] else None)
            return {"round": r, "verdict": verdict, "reason": reason}, calls
        committed = self.pull(context, CommittedPlan, "commit", key=COMMITTED_KEY, round_number=r)
        review = self.pull(context, RoundReview, "review", round_number=r)
        if review is None:
            outcome = self.pull(context, Outcome, "review", key=OUTCOME_KEY, round_number=r)
            verdict = outcome.verdict if outcome else "review_failed"
            reason = outcome.reason if outcome else "the review task did not finish"
            review = RoundReview(verdict=verdict, reason=reason, plan_id="", plan_hash="")
        plan = committed.plan if committed else proposal.plan
        entry = {
            "round": r,
            "plan_id": plan["id"],
            "plan_hash": committed.plan_hash if committed else proposal.plan_hash,
            "parent_plan_id": plan["provenance"].get("parent_plan_id"),
            "edited": committed.edited if committed else False,
            "approved_by": committed.approved_by if committed else None,
            "auto_approved": committed.auto_approved if committed else None,
            "verdict": review.verdict,
            "reason": review.reason,
            "summary": review.summary,
            "steps": review.steps,
        }
        return entry, calls

    def _replay_of(self, context: Any) -> dict[str, Any] | None:
        """What round 1 replayed (from its proposal, or from the run conf when the replay was refused)."""
        proposal = self.pull(context, Proposal, "plan", round_number=1)
        if proposal is not None:
            return proposal.replay_of
        return replay_of_run(context, self.automation.id)

    def _compensation(self, context: Any) -> dict[str, list[str]]:
        """What the saga undid, and the finished compensable steps it could not undo."""
        ti = context["ti"]
        to_undo = self.automation.saga_task("to_undo")
        listed = list(ti.xcom_pull(task_ids=to_undo) or [])
        for routed in (ti.xcom_pull(task_ids=to_undo, key=ROUTES_KEY) or {}).values():
            listed.extend(routed)
        undone: list[str] = []
        not_undone: list[str] = []
        for item in listed:
            ticket = UndoTicket.model_validate(item)
            record = pull(ti, UndoRecord, ticket.task, key=UNDO_RECORD_KEY, map_index=ticket.index)
            (undone if record is not None else not_undone).append(f"round {ticket.round}: {ticket.step['id']}")
        return {"undone": undone, "not_undone": not_undone}

    def _status(self, final: dict[str, Any]) -> Any:
        verdict = final.get("verdict")
        if verdict == "done":
            return "succeeded"
        if verdict == "rejected":
            return "rejected"
        if verdict == "escalate" and self.automation.settings.on_escalate == "notify":
            return "escalated"
        if verdict == "replan":
            final["reason"] = f"re-plan limit reached ({self.automation.settings.max_replans}): {final.get('reason')}"
        return "failed"

    def _log_report(self, report: Report) -> None:
        emit(
            self.log,
            "automation.report",
            dag_id=report.dag_id,
            run_id=report.run_id,
            status=report.status,
            verdict=report.verdict,
            cost_usd=report.cost_usd,
            model_calls=len(report.model_calls),
            version_chain=report.version_chain,
            **report.tokens,
        )
        lines = [f"Run report: {report.status.upper()} (verdict: {report.verdict}) {report.reason or ''}"]
        for r in report.rounds:
            lines.append(
                f"  round {r['round']}: plan {r.get('plan_id')} {r.get('plan_hash', '')[:19]} -> {r['verdict']}"
            )
            for s in r.get("steps", []):
                lines.append(
                    f"    {s['id']:<28} {s['tool']:<20} {s['status']:<8} attempts={s.get('attempts', 0)} "
                    f"duration={s.get('duration_s', '-')}s"
                )
        for c in report.model_calls:
            lines.append(
                f"  call {c['purpose']:<7} {c['request_id']} in={c['input_tokens']} out={c['output_tokens']} "
                f"cache_read={c['cache_read_input_tokens']} ${c['cost_usd']}"
            )
        lines.append(f"  total: ${report.cost_usd} of ${report.budget_usd}; tokens {report.tokens}")
        comp = report.compensation
        if comp["undone"] or comp["not_undone"]:
            lines.append(f"  compensation: undone {comp['undone']}; could not undo {comp['not_undone'] or 'nothing'}")
        self.log.info("\n".join(lines))

    def _remember(self, report: Report) -> None:
        last = report.rounds[-1:] if report.rounds else []
        failed = [s["id"] for r in last for s in r.get("steps", []) if s["status"] != "success"]
        entry = {
            "run_id": report.run_id,
            "goal": report.goal,
            "verdict": report.verdict,
            "reason": (report.reason or "")[:500],
            "failed_steps": failed,
            "plan_hash": last[0].get("plan_hash") if last else None,
            "data_interval_start": report.run.get("data_interval_start"),
            "data_interval_end": report.run.get("data_interval_end"),
        }
        try:
            if not remember(self.automation.id, entry, self.automation.settings.memory_runs):
                self.log.warning("the automation's memory did not keep this run: other runs kept overwriting it")
        except Exception:  # memory is best effort: it must never change the run's outcome
            self.log.exception("could not update the automation's memory")
