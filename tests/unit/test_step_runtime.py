"""The step runtime in-process, with a recording task instance standing in for Airflow's."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException
from pydantic import BaseModel

from airflow_claude.catalog import Catalog, ToolContext, python_tool
from airflow_claude.observability.records import parse_record
from airflow_claude.observability.redaction import register_secret
from airflow_claude.runtime.provenance import PROVENANCE_XCOM_KEY, StepIdentity, idempotency_key
from airflow_claude.runtime.step import PlanStepOperator

SEEN: list[dict[str, Any]] = []


class Total(BaseModel):
    total: float
    currency: str


@python_tool
def add(values: list[float], currency: str = "EUR") -> Total:
    """Add numbers."""
    return Total(total=sum(values), currency=currency)


@python_tool(side_effects="mutating")
def record(message: str, context: ToolContext) -> dict[str, str]:
    """Record a message and the idempotency key it was sent with."""
    SEEN.append({"message": message, "key": context.idempotency_key, "try": context.try_number})
    return {"key": context.idempotency_key}


@python_tool
def liar(n: int) -> Total:
    """Returns something that breaks its own output schema."""
    return {"total": "not a number"}  # type: ignore[return-value]


@python_tool
def echo(message: str) -> dict[str, str]:
    """Return the message: a tool output that may carry a secret."""
    return {"message": message}


@python_tool
def chatty(token: str, context: ToolContext) -> dict[str, bool]:
    """Log a secret every way a logger takes one."""
    context.log.info("calling with token %s", token)
    context.log.warning(f"inline {token}", header={"Authorization": f"Bearer {token}"})
    context.log.log(40, "as a level: %s and %d", token, 7)
    return {"ok": context.log.isEnabledFor(20) in (True, False)}


catalog = Catalog([add, record, liar, echo, chatty])


class FakeTI:
    """Just what a step uses of a RuntimeTaskInstance: ids, try number, XCom."""

    def __init__(self, task_id: str, outputs: dict[str, Any], try_number: int = 1) -> None:
        self.dag_id, self.run_id, self.task_id, self.try_number = "d", "manual__1", task_id, try_number
        self.outputs = outputs
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str, key: str = "return_value", default: Any = None) -> Any:
        return self.outputs.get(task_ids, default)

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def step(tool_name: str, args: dict[str, Any], task_id: str = "s") -> PlanStepOperator:
    identity = StepIdentity("p", "sha256:abc", task_id, tool_name, "1", catalog.fingerprint)
    return PlanStepOperator.for_step(task_id=task_id, tool=catalog[tool_name], step_args=args, identity=identity)  # type: ignore[arg-type]


def test_references_resolve_and_output_is_plain_json_with_provenance() -> None:
    ti = FakeTI("s", {"q": {"rows": [{"v": 1.5}, {"v": 2.5}], "values": [1.5, 2.5]}})
    out = step("add", {"values": {"$ref": "steps.q.output.values"}, "currency": "USD"}).execute({"ti": ti})
    assert out == {"total": 4.0, "currency": "USD"}
    stamp = ti.pushed[PROVENANCE_XCOM_KEY]
    assert stamp["plan_id"] == "p" and stamp["plan_hash"] == "sha256:abc" and stamp["tool"] == "add"
    assert stamp["idempotency_key"] == idempotency_key("d", "manual__1", "s", {"values": [1.5, 2.5], "currency": "USD"})


def test_idempotency_key_is_stable_across_retries_and_distinct_otherwise() -> None:
    SEEN.clear()
    for try_number in (1, 2):
        step("record", {"message": "hi"}).execute({"ti": FakeTI("s", {}, try_number)})
    assert SEEN[0]["key"] == SEEN[1]["key"] and [s["try"] for s in SEEN] == [1, 2]
    base = idempotency_key("d", "r", "s", {"a": 1})
    assert base != idempotency_key("d", "r2", "s", {"a": 1})
    assert base != idempotency_key("d", "r", "s2", {"a": 1})
    assert base != idempotency_key("d", "r", "s", {"a": 2})


def test_resolved_argument_of_wrong_type_fails_without_retry() -> None:
    ti = FakeTI("s", {"q": {"values": "oops"}})
    with pytest.raises(AirflowFailException, match="values: 'oops' is not of type 'array'"):
        step("add", {"values": {"$ref": "steps.q.output.values"}}).execute({"ti": ti})


def test_missing_upstream_output_and_bad_path_fail_clearly() -> None:
    with pytest.raises(AirflowFailException, match="step 'q' has no output in XCom"):
        step("add", {"values": {"$ref": "steps.q.output.values"}}).execute({"ti": FakeTI("s", {})})
    with pytest.raises(AirflowFailException, match="key 'values' not in the output"):
        step("add", {"values": {"$ref": "steps.q.output.values"}}).execute({"ti": FakeTI("s", {"q": {"x": 1}})})


def test_output_that_breaks_the_tool_contract_fails() -> None:
    with pytest.raises(AirflowFailException, match="output break its schema"):
        step("liar", {"n": 1}).execute({"ti": FakeTI("s", {})})


def test_template_payloads_reach_the_tool_verbatim() -> None:
    SEEN.clear()
    payload = "{{ 7 * 7 }} {% for x in [1] %}{{ x }}{% endfor %}"
    step("record", {"message": payload}).execute({"ti": FakeTI("s", {})})
    assert SEEN[-1]["message"] == payload


def test_records_are_structured_and_secrets_masked(capsys: pytest.CaptureFixture[str]) -> None:
    register_secret("hunter2-very-secret")
    ti = FakeTI("s", {})
    out = step("echo", {"message": "password is hunter2-very-secret"}).execute({"ti": ti})
    printed = capsys.readouterr().out
    records = [r for r in (parse_record(line) for line in printed.splitlines()) if r]
    assert [r["event"] for r in records] == ["step.started", "step.finished"]
    assert {r["step_id"] for r in records} == {"s"} and {r["plan_id"] for r in records} == {"p"}
    assert all(r["run_id"] == "manual__1" and r["dag_id"] == "d" for r in records)
    assert records[1]["duration_s"] >= 0 and records[0]["idempotency_key"].startswith("ik_")
    assert out == {"message": "password is ***"}  # what goes to XCom is masked
    assert "hunter2-very-secret" not in printed


def test_a_tools_log_lines_are_masked_at_the_call_and_keep_their_call_site(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Airflow 3.3's LocalExecutor echoes task log lines into the scheduler's stdout, unmasked: mask at the call."""
    secret = "tool-logged-secret-7f3a"
    register_secret(secret)
    assert step("chatty", {"token": secret}).execute({"ti": FakeTI("s", {})}) == {"ok": True}
    printed = capsys.readouterr().out
    lines = [line for line in printed.splitlines() if any(w in line for w in ("calling", "inline", "as a level"))]
    assert len(lines) == 3, printed
    assert secret not in printed, printed
    assert "as a level: *** and 7" in lines[2] and "'Authorization': '***'" in lines[1]
    assert all("loc=test_step_runtime.py:" in line for line in lines), lines  # the tool's own line


def test_a_compiled_replay_runs_only_the_plan_it_asked_for() -> None:
    """A replay run's conf names a plan hash; a step of a DAG now running another plan runs nothing."""
    from types import SimpleNamespace

    from airflow_claude.runtime.replay import REPLAY_CONF_KEY, ReplayRefused, ReplayRequest

    def run(conf: dict[str, Any]) -> tuple[Any, FakeTI]:
        SEEN.clear()
        ti = FakeTI("s", {})
        out = step("record", {"message": "hello"}).execute({"ti": ti, "dag_run": SimpleNamespace(conf=conf)})
        return out, ti

    same = ReplayRequest(plan_hash="sha256:abc", source={"dag_id": "d", "run_id": "scheduled__0"}).conf()
    out, _ = run(same)
    assert out == {"key": SEEN[0]["key"]} and len(SEEN) == 1
    refused = r"sha256:other refused \[plan_hash_mismatch\]: this DAG now runs sha256:abc"
    with pytest.raises(ReplayRefused, match=refused):
        run(ReplayRequest(plan_hash="sha256:other").conf())
    assert SEEN == []  # the tool never ran
    with pytest.raises(ReplayRefused, match=r"airflow_claude_replay.plan_hash: Field required"):
        run({REPLAY_CONF_KEY: {"plan": None}})
    assert issubclass(ReplayRefused, AirflowFailException)  # refused for good: no retry
