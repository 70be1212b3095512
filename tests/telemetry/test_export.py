"""OTLP export: nothing exists or connects without an endpoint; with one, a real
collector (an in-process OTLP gRPC server) receives the spans and metrics."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from llmrouter_server.backends.scripted import ScriptedBackend, Step
from llmrouter_server.routing.router import build_router
from llmrouter_server.telemetry.setup import Telemetry
from llmrouter_server.telemetry.traces import TraceObserver
from tests.helpers import generate, scripted_config, start
from tests.telemetry.otel_serving import TRACEPARENT, observed

pytestmark = pytest.mark.timeout(30)


class Collector(
    trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer
):
    """An OTLP collector keeping every export request it receives."""

    def __init__(self) -> None:
        self.traces: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.metrics: list[metrics_service_pb2.ExportMetricsServiceRequest] = []

    async def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - the RPC's name
        if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
            self.traces.append(request)
            return trace_service_pb2.ExportTraceServiceResponse()
        self.metrics.append(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


@pytest.fixture
async def collector() -> AsyncIterator[tuple[Collector, int]]:
    collector = Collector()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield collector, port
    finally:
        await server.stop(0)


def _telemetry_threads() -> list[str]:
    """The running threads of exporters (the SDK names them) and of ``/metrics``."""
    names = (thread.name for thread in threading.enumerate())
    return sorted(name for name in names if name.startswith(("Otel", "llmrouter-metrics")))


def test_without_an_endpoint_nothing_is_built_to_export() -> None:
    config = scripted_config("s")
    telemetry = Telemetry.from_config(config, build_router(config, {"s": ScriptedBackend("s", [])}))
    assert telemetry.meter_provider is None
    assert telemetry.tracer_provider is None
    assert telemetry.metrics_port is None
    assert [type(observer) for observer in telemetry.observers] == [TraceObserver]


async def test_without_an_endpoint_no_exporter_thread_runs() -> None:
    backend = ScriptedBackend("s", [Step(" a")])
    async with observed(scripted_config("s"), {"s": backend}, in_memory=False) as server:
        await generate(server.stub, start())
        assert _telemetry_threads() == []
        assert server.telemetry.tracer_provider is None


async def test_an_endpoint_gets_the_spans_and_metrics(collector: tuple[Collector, int]) -> None:
    received, port = collector
    config = scripted_config("s", telemetry={"otlp_endpoint": f"http://127.0.0.1:{port}"})
    backend = ScriptedBackend("s", [Step(" a"), Step(" b")])
    async with observed(config, {"s": backend}, in_memory=False) as server:
        assert _telemetry_threads() == [
            "OtelBatchSpanRecordProcessor",
            "OtelPeriodicExportingMetricReader",
        ]
        caller = [("traceparent", TRACEPARENT)]
        call = server.stub.Generate(iter([start(stream_id="x")]), metadata=caller)
        assert [r.event.WhichOneof("kind") async for r in call][-1] == "completed"
    # Shutting down flushed both.
    assert _telemetry_threads() == []
    spans = [
        span
        for request in received.traces
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert [span.name for span in spans] == ["llmrouter.generation"]
    attributes = {a.key: a.value.string_value for a in spans[0].attributes}
    assert attributes["llmrouter.stream_id"] == "x"
    assert spans[0].trace_id.hex() == TRACEPARENT.split("-")[1]
    names = {
        metric.name
        for request in received.metrics
        for resource in request.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert {"llmrouter.streams.completed", "llmrouter.output_tokens"} <= names
