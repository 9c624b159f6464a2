"""A local OTLP/HTTP receiver: what a real Airflow exports (traces and metrics), decoded with ``opentelemetry-proto``.

Start it, point Airflow's ``OTEL_EXPORTER_OTLP_ENDPOINT`` at :attr:`OtlpReceiver.endpoint` (and
``OTEL_TRACES_EXPORTER=otlp_proto_http``), then read :meth:`spans` and :meth:`metric_points`.
"""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    status_code: int
    status_message: str
    start: int
    end: int
    scope: str
    events: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class MetricPoint:
    name: str
    attributes: dict[str, Any]
    value: float
    start: int
    time: int


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def _attributes(items: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in items}


@dataclass
class OtlpReceiver:
    """Collects every span and metric data point posted to ``/v1/traces`` and ``/v1/metrics``."""

    spans_received: list[Span] = field(default_factory=list)
    points_received: list[MetricPoint] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> list[Span]:
        with self.lock:
            return list(self.spans_received)

    def metric_points(self) -> list[MetricPoint]:
        with self.lock:
            return list(self.points_received)

    def raw_text(self) -> str:
        """Every payload as JSON text, for asserting that a string appears nowhere."""
        with self.lock:
            return "\n".join(p.decode("utf-8", "replace") for p in self.raw)

    def _traces(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        found = []
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for s in scope.spans:
                    found.append(
                        Span(
                            name=s.name,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_span_id=s.parent_span_id.hex(),
                            kind=s.kind,
                            attributes=_attributes(s.attributes),
                            status_code=s.status.code,
                            status_message=s.status.message,
                            start=s.start_time_unix_nano,
                            end=s.end_time_unix_nano,
                            scope=scope.scope.name,
                            events=tuple({"name": e.name, "attributes": _attributes(e.attributes)} for e in s.events),
                        )
                    )
        with self.lock:
            self.spans_received.extend(found)
            self.raw.append(str(MessageToDict(request)).encode())

    def _metrics(self, body: bytes) -> None:
        request = ExportMetricsServiceRequest.FromString(body)
        found = []
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    data = getattr(metric, kind)
                    for point in data.data_points:
                        if kind in ("sum", "gauge"):
                            value = point.as_double if point.WhichOneof("value") == "as_double" else point.as_int
                        else:
                            value = point.count  # histograms: the number of observations
                        found.append(
                            MetricPoint(
                                metric.name,
                                _attributes(point.attributes),
                                value,
                                point.start_time_unix_nano,
                                point.time_unix_nano,
                            )
                        )
        with self.lock:
            self.points_received.extend(found)
            self.raw.append(str(MessageToDict(request)).encode())

    def start(self) -> OtlpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                if self.path.endswith("/v1/traces"):
                    receiver._traces(body)
                elif self.path.endswith("/v1/metrics"):
                    receiver._metrics(body)
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                payload = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def env(self) -> dict[str, str]:
        """What a real Airflow needs to export its traces and metrics here (delta temporality: points add up)."""
        return {
            "AIRFLOW__TRACES__OTEL_ON": "True",
            "AIRFLOW__METRICS__OTEL_ON": "True",
            "OTEL_TRACES_EXPORTER": "otlp_proto_http",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta",
            "OTEL_METRIC_EXPORT_INTERVAL": "2000",
            "OTEL_BSP_SCHEDULE_DELAY": "500",
            "OTEL_SERVICE_NAME": "airflow-claude-e2e",
        }


@contextmanager
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()
