"""One server's metrics and traces: providers, readers, exporters, ``/metrics``.

``Telemetry.from_config`` builds, from ``telemetry.*``:

- a ``MeterProvider`` owned by the server (never the global one), read by a
  ``PrometheusMetricReader`` on a registry of its own when ``metrics_port`` is
  set (served at ``/metrics`` on ``metrics_host``, else the gRPC host, by ``exposition.py`` once
  started), and by a ``PeriodicExportingMetricReader`` over OTLP when
  ``otlp_endpoint`` is set; with neither there is no metrics observer at all.
- a ``TracerProvider`` with a batching OTLP span exporter when
  ``otlp_endpoint`` is set; otherwise the API's no-op tracer, so nothing is
  recorded, exported or attempted, while a caller's trace context is still
  passed on to HTTP upstreams.

Tests add their own readers and span exporters (the SDK's in-memory ones).
No exporter thread or connection exists unless ``otlp_endpoint`` is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import NoOpTracerProvider, Tracer
from prometheus_client import CollectorRegistry

from llmrouter_server.config import Config
from llmrouter_server.routing.router import Router
from llmrouter_server.streams.observers import Observer
from llmrouter_server.telemetry.exposition import MetricsServer
from llmrouter_server.telemetry.metrics import MetricsObserver
from llmrouter_server.telemetry.traces import TraceObserver

SCOPE = "llmrouter_server"
"""The instrumentation scope of the router's meter and tracer."""

EXPORT_TIMEOUT_SECONDS = 2.0
"""How long one OTLP export may take (a collector that is down costs this much)."""

EXPORT_INTERVAL_MILLIS = 10_000
"""How often metrics are pushed over OTLP."""

SHUTDOWN_MILLIS = 3_000
"""How long shutdown waits for the last OTLP exports."""


def _version() -> str:
    try:
        return version("llmrouter-server")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


class Telemetry:
    """The metrics and traces of one server: its observers and what exports them."""

    def __init__(
        self,
        observers: Sequence[Observer],
        meter_provider: MeterProvider | None,
        tracer_provider: TracerProvider | None,
        metrics_server: MetricsServer | None,
    ) -> None:
        """Use ``from_config``; this takes what it built."""
        self.observers = tuple(observers)
        """What ``Generations`` gives every generation (metrics, traces)."""
        self.meter_provider = meter_provider
        """The server's own meter provider; None when nothing reads metrics."""
        self.tracer_provider = tracer_provider
        """The SDK tracer provider; None with the no-op tracer."""
        self._metrics_server = metrics_server

    @classmethod
    def from_config(
        cls,
        config: Config,
        router: Router,
        *,
        metric_readers: Sequence[MetricReader] = (),
        span_exporters: Sequence[SpanExporter] = (),
    ) -> Telemetry:
        """Builds the providers, readers and exporters ``config.telemetry`` asks for.

        Nothing starts here: the ``/metrics`` port is bound by ``start``, and the
        OTLP exporters connect when they first export.

        Args:
            config: The configuration (``telemetry``, and ``server.host``).
            router: Whose targets' circuits the circuit gauge reads.
            metric_readers: More readers (tests: ``InMemoryMetricReader``).
            span_exporters: More span exporters, each behind a simple
                (synchronous) processor (tests: ``InMemorySpanExporter``).
        """
        settings = config.telemetry
        resource = Resource.create({"service.name": "llmrouter", "service.version": _version()})
        readers = list(metric_readers)
        registry: CollectorRegistry | None = None
        if settings.metrics_port is not None:
            registry = CollectorRegistry(auto_describe=True)
            readers.append(PrometheusMetricReader(scope_info_enabled=False, registry=registry))
        processors: list[SpanProcessor] = [SimpleSpanProcessor(e) for e in span_exporters]
        if settings.otlp_endpoint:
            endpoint = settings.otlp_endpoint
            readers.append(
                PeriodicExportingMetricReader(
                    OTLPMetricExporter(endpoint=endpoint, timeout=EXPORT_TIMEOUT_SECONDS),
                    export_interval_millis=EXPORT_INTERVAL_MILLIS,
                    export_timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000,
                )
            )
            exporter = OTLPSpanExporter(endpoint=endpoint, timeout=EXPORT_TIMEOUT_SECONDS)
            processors.append(BatchSpanProcessor(exporter))
        observers: list[Observer] = []
        meter_provider = None
        if readers:
            meter_provider = MeterProvider(
                metric_readers=readers,
                resource=resource,
                shutdown_on_exit=False,
                # No span is current where generations record: a trace-based
                # filter would look for one on every measurement, in vain.
                exemplar_filter=AlwaysOffExemplarFilter(),
            )
            observers.append(MetricsObserver(meter_provider.get_meter(SCOPE, _version()), router))
        tracer_provider = None
        tracer: Tracer = NoOpTracerProvider().get_tracer(SCOPE)
        if processors:
            tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
            for processor in processors:
                tracer_provider.add_span_processor(processor)
            tracer = tracer_provider.get_tracer(SCOPE, _version())
        observers.append(TraceObserver(tracer))
        metrics_server = None
        if registry is not None and settings.metrics_port is not None:
            host = settings.metrics_host or config.server.host
            metrics_server = MetricsServer(registry, host, settings.metrics_port)
        return cls(observers, meter_provider, tracer_provider, metrics_server)

    @property
    def metrics_port(self) -> int | None:
        """The ``/metrics`` port (the bound one once started); None when not served."""
        return self._metrics_server.port if self._metrics_server is not None else None

    async def start(self) -> None:
        """Binds the ``/metrics`` port, when configured, and serves it.

        Raises:
            OSError: The port cannot be bound.
        """
        if self._metrics_server is not None:
            await asyncio.to_thread(self._metrics_server.start)

    async def shutdown(self) -> None:
        """Stops ``/metrics``, sends what is left over OTLP and shuts the providers
        down, in a thread (an export takes ``EXPORT_TIMEOUT_SECONDS`` at most, the
        metrics' last one ``SHUTDOWN_MILLIS``)."""
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        if self._metrics_server is not None:
            self._metrics_server.stop()
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown(timeout_millis=SHUTDOWN_MILLIS)
