"""A server with telemetry, started as ``app.start_server`` does, for these tests.

``start_server`` does not build telemetry yet; until it does, ``observed``
mirrors it (the router, ``Generations`` with the telemetry's observers, the
servicer behind the same interceptors, on loopback port 0) and adds the
SDK's in-memory span exporter and metric reader, so tests see exactly what
was recorded. Stopping it stops the server, then the telemetry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from llmrouter.v1 import service_pb2_grpc as svc_grpc
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llmrouter_server.backends.base import Backend
from llmrouter_server.config import Config
from llmrouter_server.routing.router import Router
from llmrouter_server.streams.service import Generations
from llmrouter_server.telemetry.setup import Telemetry
from tests.helpers import serving

CALLER_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"
"""A caller's W3C trace context: its trace and the span that made the call."""


@dataclass
class Observed:
    """A running server, a stub to it, and what its telemetry recorded."""

    stub: svc_grpc.RouterServiceStub
    telemetry: Telemetry
    generations: Generations
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def finished_spans(self) -> list[ReadableSpan]:
        """The spans ended so far, in the order they ended."""
        return list(self.spans.get_finished_spans())

    def sums(self, name: str) -> dict[frozenset[tuple[str, Any]], float]:
        """The value of each series of counter or gauge ``name``, by label set."""
        return {
            frozenset(point.attributes.items()): point.value
            for point in self._points(name)
            if isinstance(point, NumberDataPoint)
        }

    def counts(self, name: str) -> dict[frozenset[tuple[str, Any]], int]:
        """The sample count of each series of histogram ``name``, by label set."""
        return {
            frozenset(point.attributes.items()): point.count
            for point in self._points(name)
            if isinstance(point, HistogramDataPoint)
        }

    def _points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        if data is None:
            return []
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


def labels(**values: str) -> frozenset[tuple[str, str]]:
    """A label set as ``Observed.sums`` and ``counts`` key it."""
    return frozenset(values.items())


@asynccontextmanager
async def observed(
    config: Config,
    backends: Mapping[str, Backend] | None = None,
    *,
    in_memory: bool = True,
) -> AsyncIterator[Observed]:
    """Starts the server (``app.start_server``) with its telemetry plus in-memory exporters.

    Args:
        config: The configuration (``server.port`` 0).
        backends: Built backends (scripted), or None to build the configured ones.
        in_memory: Add the in-memory exporters; False builds exactly what the
            configuration asks for (their ``spans`` and ``metrics`` stay empty).
    """
    spans, metrics = InMemorySpanExporter(), InMemoryMetricReader()
    made: list[Telemetry] = []

    def make(config: Config, router: Router) -> Telemetry:
        telemetry = Telemetry.from_config(
            config,
            router,
            metric_readers=[metrics] if in_memory else [],
            span_exporters=[spans] if in_memory else [],
        )
        made.append(telemetry)
        return telemetry

    async with serving(config, backends, make_telemetry=make) as served:
        generations = served.server.generations
        yield Observed(served.stub, made[0], generations, spans, metrics)
