"""Spans and metrics in-process: the SDK's in-memory exporter and reader, the real gateway and step runtime."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk._shared.observability.metrics.otel_logger import SafeOtelLogger
from airflow.sdk.observability import stats
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from airflow_claude.catalog import Catalog, python_tool
from airflow_claude.examples.orders import catalog as orders_catalog
from airflow_claude.observability.metrics import METRICS
from airflow_claude.observability.redaction import register_secret
from airflow_claude.observability.tracing import CAPTURE_CONTENT_ENV
from airflow_claude.planner import CallPolicy, ClaudePlanner, ModelGateway
from airflow_claude.runtime.provenance import StepIdentity
from airflow_claude.runtime.step import PlanStepOperator
from airflow_claude.testing import FakeClaude
from tests.unit.test_ledger import DictStore
from tests.unit.test_planner import GOAL, STEPS, broken_steps

SECRET = "obs-s3cret-7731-value"
MODEL = "claude-sonnet-5-5"
FAST = CallPolicy(attempts=2, retry_after_cap=1.0, base_backoff=0.05, timeout=5.0)

_EXPORTER = InMemorySpanExporter()
if not isinstance(trace.get_tracer_provider(), TracerProvider):  # one provider per process, ever
    _provider = TracerProvider()
    _provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(_provider)
_PARENT = trace.get_tracer("test.airflow")


@python_tool
def double(n: int) -> dict[str, int]:
    """Double a number."""
    return {"n": n * 2}


@python_tool(circuit=None)
def leaky(token: str) -> dict[str, str]:
    """Fails, repeating its argument in the error."""
    raise RuntimeError(f"the warehouse refused token {token}")


catalog = Catalog([double, leaky])


class TI:
    def __init__(self, task_id: str, try_number: int = 1) -> None:
        self.dag_id, self.run_id, self.task_id, self.try_number = "d", "manual__1", task_id, try_number
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str, key: str = "return_value", default: Any = None) -> Any:
        return default

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@pytest.fixture
def spans() -> Iterator[list[ReadableSpan]]:
    _EXPORTER.clear()
    finished: list[ReadableSpan] = []
    yield finished
    _EXPORTER.clear()


def collected() -> list[ReadableSpan]:
    return list(_EXPORTER.get_finished_spans())


def by_name(items: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    return {s.name: s for s in items}


def run(tool: str, args: dict[str, Any], store: DictStore | None = None, try_number: int = 1) -> Any:
    identity = StepIdentity("p", "sha256:abc", "s1", tool, "1", catalog.fingerprint)
    task = PlanStepOperator.for_step(task_id="s1", tool=catalog[tool], step_args=args, identity=identity)  # type: ignore[arg-type]
    context = {"ti": TI("s1", try_number), "task_state_store": store or DictStore()}
    with _PARENT.start_as_current_span("worker.s1"):  # what Airflow's task runner opens
        return task.execute(context)


def test_a_step_is_a_span_with_its_tool_call_under_the_task_span(spans: list[ReadableSpan]) -> None:
    assert run("double", {"n": 21}) == {"n": 42}
    found = by_name(collected())
    worker, step, tool = found["worker.s1"], found["step s1"], found["execute_tool double"]
    assert step.parent is not None and step.parent.span_id == worker.context.span_id
    assert tool.parent is not None and tool.parent.span_id == step.context.span_id
    assert {s.context.trace_id for s in (worker, step, tool)} == {worker.context.trace_id}
    attrs = dict(step.attributes or {})
    assert attrs["airflow_claude.plan.id"] == "p" and attrs["airflow_claude.plan.hash"] == "sha256:abc"
    assert attrs["airflow_claude.step.id"] == "s1" and attrs["airflow_claude.try_number"] == 1
    assert str(attrs["airflow_claude.idempotency_key"]).startswith("ik_")
    assert attrs["airflow_claude.step.replayed"] is False
    tool_attrs = dict(tool.attributes or {})
    assert tool_attrs["gen_ai.operation.name"] == "execute_tool" and tool_attrs["gen_ai.tool.name"] == "double"
    assert tool_attrs["gen_ai.tool.call.id"] == attrs["airflow_claude.idempotency_key"]


def test_a_replayed_step_has_no_tool_call_span(spans: list[ReadableSpan]) -> None:
    store = DictStore()
    run("double", {"n": 2}, store)
    _EXPORTER.clear()
    assert run("double", {"n": 2}, store, try_number=2) == {"n": 4}  # the next try finds the effect in the ledger
    names = {s.name for s in collected()}
    assert "step s1" in names and "execute_tool double" not in names
    assert by_name(collected())["step s1"].attributes["airflow_claude.step.replayed"] is True  # type: ignore[index]


def test_a_failed_tool_marks_both_spans_failed_and_masks_the_message(spans: list[ReadableSpan]) -> None:
    register_secret(SECRET)
    with pytest.raises(RuntimeError):
        run("leaky", {"token": SECRET})
    found = by_name(collected())
    for name in ("step s1", "execute_tool leaky"):
        assert found[name].status.status_code == StatusCode.ERROR
        assert found[name].attributes["error.type"] == "RuntimeError"  # type: ignore[index]
        assert "warehouse refused token ***" in (found[name].status.description or "")
    assert SECRET not in exported_text(collected())


def exported_text(items: list[ReadableSpan]) -> str:
    return json.dumps(
        [{"name": s.name, "attrs": dict(s.attributes or {}), "status": s.status.description} for s in items],
        default=str,
    )


def test_a_model_call_is_a_genai_chat_span_with_usage_and_cost(fake_claude: FakeClaude, spans: list[Any]) -> None:
    fake_claude.reply_tool_use("answer", {"text": "hi"})
    gateway = ModelGateway(fake_claude.client(), MODEL, policy=FAST)
    message, usage = gateway.call("review", _request("Say hi."), prompt_template="t", plan_id="p")
    (chat,) = [s for s in collected() if s.name == f"chat {MODEL}"]
    attrs = dict(chat.attributes or {})
    assert chat.kind == trace.SpanKind.CLIENT
    assert attrs["gen_ai.operation.name"] == "chat" and attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.request.model"] == MODEL and attrs["gen_ai.response.id"] == message.id
    assert attrs["gen_ai.usage.input_tokens"] == usage.input_tokens > 0
    assert attrs["gen_ai.usage.output_tokens"] == usage.output_tokens > 0
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == usage.cache_read_input_tokens
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == usage.cache_creation_input_tokens
    assert attrs["gen_ai.response.finish_reasons"] == ("tool_use",)
    assert attrs["airflow_claude.cost_usd"] == float(usage.cost_usd) and attrs["airflow_claude.purpose"] == "review"
    assert attrs["airflow_claude.plan.id"] == "p"
    assert not any(key.startswith("gen_ai.input") or key.startswith("gen_ai.output") for key in attrs)
    (http,) = [s for s in collected() if s.name == "anthropic.messages.create"]  # the SDK's own span, one per attempt
    assert http.parent is not None and http.parent.span_id == chat.context.span_id


def test_content_capture_is_opt_in_and_masked(
    fake_claude: FakeClaude, spans: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    register_secret(SECRET)
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
    fake_claude.reply_tool_use("answer", {"text": f"the key is {SECRET}"})
    gateway = ModelGateway(fake_claude.client(), MODEL, policy=FAST)
    gateway.call("review", _request(f"Use {SECRET}."), prompt_template="t")
    (chat,) = [s for s in collected() if s.name.startswith("chat ")]
    attrs = dict(chat.attributes or {})
    assert "Use ***." in str(attrs["gen_ai.input.messages"])
    assert "the key is ***" in str(attrs["gen_ai.output.messages"])
    assert SECRET not in exported_text(collected())


def test_a_plan_with_a_repair_is_one_plan_span_over_two_calls_and_two_validations(
    fake_claude: FakeClaude, spans: list[Any]
) -> None:
    fake_claude.reply_tool_use("submit_plan", {"steps": broken_steps()}, times=1)
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS})
    planner = ClaudePlanner(ModelGateway(fake_claude.client(), MODEL, policy=FAST), orders_catalog)
    result = planner.plan(GOAL, plan_id="october")
    items = collected()
    (plan,) = [s for s in items if s.name == "plan october"]
    under_plan = [s for s in items if s.parent and s.parent.span_id == plan.context.span_id]
    children = sorted((s for s in under_plan if not s.name.startswith("anthropic.")), key=_start)
    assert [s.name for s in children] == [f"chat {MODEL}", "validate october", f"chat {MODEL}", "validate october"]
    assert [c.attributes["airflow_claude.purpose"] for c in children[::2]] == ["plan", "repair"]  # type: ignore[index]
    first, second = children[1].attributes, children[3].attributes
    assert first["airflow_claude.valid"] is False and "unknown_tool" in first["airflow_claude.issue_codes"]  # type: ignore[index,operator]
    assert second["airflow_claude.valid"] is True and second["airflow_claude.plan.hash"] == result.plan.hash  # type: ignore[index]
    assert plan.attributes["airflow_claude.attempts"] == 2  # type: ignore[index]


def _start(item: ReadableSpan) -> int:
    return item.start_time or 0


def _request(text: str) -> dict[str, Any]:
    return {
        "max_tokens": 256,
        "tools": [{"name": "answer", "description": "Answer.", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "answer"},
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
    }


@pytest.fixture
def metrics_reader() -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    stats.initialize(factory=lambda: SafeOtelLogger(provider), export_legacy_names=False)
    yield reader
    stats.initialize(factory=_no_stats, export_legacy_names=False)


def _no_stats() -> Any:
    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger

    return NoStatsLogger()


def points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    data = reader.get_metrics_data()
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    found.setdefault(metric.name, []).append((dict(point.attributes or {}), value))
    return found


def total(found: dict[str, list[tuple[dict[str, Any], Any]]], name: str, **tags: str) -> Any:
    return sum(v for attrs, v in found.get(f"airflow.{name}", []) if all(attrs.get(k) == t for k, t in tags.items()))


def test_metrics_count_what_the_records_say(fake_claude: FakeClaude, metrics_reader: InMemoryMetricReader) -> None:
    fake_claude.reply_tool_use("submit_plan", {"steps": broken_steps()}, times=1)
    fake_claude.reply_tool_use("submit_plan", {"steps": STEPS})
    result = ClaudePlanner(ModelGateway(fake_claude.client(), MODEL, policy=FAST), orders_catalog).plan(GOAL)
    run("double", {"n": 1})
    with pytest.raises(RuntimeError):
        run("leaky", {"token": "x"})
    found = points(metrics_reader)
    assert total(found, "claude.model_calls") == len(result.calls) == 2
    assert total(found, "claude.model_calls", purpose="repair") == 1 == total(found, "claude.plan_repairs")
    assert total(found, "claude.tokens", kind="input") == sum(c.input_tokens for c in result.calls)
    assert total(found, "claude.tokens", kind="output") == sum(c.output_tokens for c in result.calls)
    assert total(found, "claude.cost_microusd") == int(result.cost_usd * 1_000_000)
    assert total(found, "claude.plan_validation_failures", code="unknown_tool") == 1
    assert total(found, "claude.steps", tool="double", status="success") == 1
    assert total(found, "claude.steps", tool="leaky", status="failed", retryable="true") == 1
    assert "airflow.claude.model_call.duration" in found
    assert {name.removeprefix("airflow.") for name in found} <= set(METRICS)


def test_every_documented_metric_comes_from_a_record(metrics_reader: InMemoryMetricReader) -> None:
    from airflow_claude.observability.metrics import record_metrics

    call = {"purpose": "repair", "model": MODEL, "input_tokens": 5, "output_tokens": 3, "cache_read_input_tokens": 2}
    record_metrics("model.call", {**call, "cache_creation_input_tokens": 1, "cost_usd": "0.000123", "duration_s": 0.2})
    record_metrics("plan.invalid", {"codes": ["cycle", "unknown_tool"]})
    record_metrics("plan.cache_hit", {"plan_id": "p"})
    record_metrics("plan.failed", {"error": "PlanRepairExhausted", "retryable": False})
    for event in ("step.finished", "step.failed", "step.replayed"):
        record_metrics(event, {"tool": "double", "retryable": True})
    record_metrics("step.compensated", {"tool": "unpublish"})
    record_metrics("circuit.opened", {"tool": "double"})
    record_metrics("model.call", {"purpose": None, "cost_usd": "not money"})  # a bad record sends what it can
    found = points(metrics_reader)
    assert {name.removeprefix("airflow.") for name in found} == set(METRICS)
    assert total(found, "claude.cost_microusd") == 123
    assert total(found, "claude.tokens", kind="cache_creation") == 1
    assert total(found, "claude.ledger_replays", tool="double") == 1 == total(found, "claude.steps", status="replayed")
    assert total(found, "claude.plan_validation_failures") == 2
