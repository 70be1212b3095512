"""Assembles and runs the gRPC server: RouterService, health, reflection.

The port is plaintext, TLS or mutual TLS (``transport``); SIGHUP re-reads the
TLS files at the next connection.

Shutdown (SIGTERM or SIGINT, ``RunningServer.stop``): health turns NOT_SERVING
at once (the server, ``llmrouter.v1.RouterService`` and every route), new
generations are refused with UNAVAILABLE, running ones (detached ones too) get
``server.grace_period_seconds`` to finish, and the rest end with UNAVAILABLE
carrying their stream id and resume offset, for their callers and subscribers
alike. Health watches end with UNAVAILABLE, calls get up to ``_FLUSH_SECONDS`` to
write their final status, and the closers run (telemetry, the metrics server),
so the process exits within the grace period and a second.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from llmrouter.v1 import service_pb2, service_pb2_grpc

from llmrouter_server.api.auth import interceptors
from llmrouter_server.api.health import RouteHealth
from llmrouter_server.api.health_service import HealthServicer
from llmrouter_server.api.lookups import Lookups
from llmrouter_server.api.reflection_service import enable_reflection
from llmrouter_server.api.servicer import RouterServicer
from llmrouter_server.auth.keys import Authenticator
from llmrouter_server.backends.base import Backend
from llmrouter_server.backends.build import build_backends
from llmrouter_server.config import Config
from llmrouter_server.gateway import metrics as gateway_metrics
from llmrouter_server.gateway.methods import router_methods
from llmrouter_server.gateway.server import PATH as GATEWAY_PATH
from llmrouter_server.gateway.server import Gateway
from llmrouter_server.routing.router import Router, build_router
from llmrouter_server.streams.service import Generations
from llmrouter_server.telemetry.logs import LogObserver
from llmrouter_server.telemetry.setup import SCOPE, Telemetry
from llmrouter_server.telemetry.stats import StatsObserver
from llmrouter_server.transport import ServerTLS, describe, exposure_warning, is_loopback, listen

logger = logging.getLogger(__name__)


_FLUSH_SECONDS = 0.5
"""Time calls get to write their final status once the generations have ended (and
health watches have been ended); calls still open then (a Control channel, a
Subscribe call the client keeps open) are cancelled."""

Closer = Callable[[], Awaitable[None] | None]
"""Something to stop last at shutdown (telemetry's ``shutdown``, the metrics server)."""

SERVICE_NAME = service_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name
"""``llmrouter.v1.RouterService``, as health checks and reflection name it."""


@dataclass
class RunningServer:
    """A started server and what it serves."""

    server: grpc.aio.Server
    """The gRPC server."""
    port: int
    """The bound port."""
    health: HealthServicer
    """The health service."""
    generations: Generations
    """The domain."""
    route_health: RouteHealth
    """Per-route health statuses."""
    tls: ServerTLS | None = None
    """The port's TLS credentials and their rotation; None when it is plaintext."""
    closers: list[Closer] = field(default_factory=list)
    """Run in order at the end of ``stop``, once no call is left: what must see
    every generation end first (telemetry's exporters, the metrics HTTP server).
    Each should return within a fraction of a second: the process exits within
    the grace period and one second."""
    gateway: Gateway | None = None
    """The WebSocket gateway; None unless ``gateway.port`` is set."""

    @property
    def gateway_port(self) -> int | None:
        """The gateway's bound port; None when it is off."""
        return None if self.gateway is None else self.gateway.port

    def reload(self) -> None:
        """Re-reads what can change while serving (SIGHUP): the TLS files."""
        if self.tls is None:
            logger.info("SIGHUP: nothing to reload (the port is plaintext)")
        else:
            self.tls.reload()

    async def stop(self, grace: float) -> None:
        """Refuses new work, lets running generations finish for ``grace`` seconds, stops.

        Generations still running after the grace period end with UNAVAILABLE
        and the offset to re-attach from (``Generations.shut_down``).
        """
        began = time.monotonic()
        logger.info(
            "shutting down: NOT_SERVING, refusing new generations; %d running get %gs of grace",
            len(self.generations.registry.running()), grace,
        )  # fmt: skip
        self.route_health.stop()
        await self.health.enter_graceful_shutdown()
        drained = await self.generations.shut_down(grace)
        self.health.close()
        stopping = [self.server.stop(_FLUSH_SECONDS)]
        if self.gateway is not None:
            stopping.append(self.gateway.stop(_FLUSH_SECONDS))
        await asyncio.gather(*stopping)
        await self.generations.close()
        for close in self.closers:
            try:
                closing = close()
                if inspect.isawaitable(closing):
                    await closing
            except Exception:  # one failing closer must not keep the others from running
                logger.exception("shutdown: %r failed", close)
        logger.info(
            "shut down in %.1fs: %d generations finished within the grace, %d ended UNAVAILABLE",
            time.monotonic() - began, drained.finished, drained.interrupted,
        )  # fmt: skip


async def start_server(
    config: Config,
    backends: Mapping[str, Backend] | None = None,
    *,
    make_telemetry: Callable[[Config, Router], Telemetry] = Telemetry.from_config,
) -> RunningServer:
    """Builds the backends (unless given), binds the port and starts serving.

    Args:
        config: The configuration.
        backends: Backends by name instead of the configured ones (tests).
        make_telemetry: Builds the metrics and traces (tests add in-memory
            exporters with ``functools.partial(Telemetry.from_config, ...)``).

    Raises:
        ConfigError: A ``tls`` file is unreadable or invalid (checked before
            any backend is built), or a backend cannot be built.
        OSError: ``telemetry.metrics_port`` cannot be bound.
    """
    tls = ServerTLS(config.tls) if config.tls is not None else None
    built = dict(backends) if backends is not None else build_backends(config)
    router = build_router(config, built)
    telemetry = make_telemetry(config, router)
    stats = StatsObserver(config.telemetry.stats_window_seconds)
    observers = [*telemetry.observers, stats, LogObserver()]
    generations = Generations(router, config.limits, config.streams, observers)
    authenticator = Authenticator(config.auth) if config.auth is not None else None
    server = grpc.aio.server(
        interceptors=interceptors(config, authenticator),
        options=[
            ("grpc.max_receive_message_length", config.server.max_receive_message_bytes),
            ("grpc.max_concurrent_streams", config.limits.max_calls_per_connection),
            ("grpc.so_reuseport", 0),
        ],
    )
    lookups = Lookups(generations, stats)
    service_pb2_grpc.add_RouterServiceServicer_to_server(
        RouterServicer(generations, lookups, open_access=config.auth is None), server
    )
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_reflection(server, [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME])
    port = listen(server, config.server, tls)
    await telemetry.start()
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    route_health = RouteHealth(health_servicer, generations.router.routes())
    await route_health.start()
    gateway = None
    if config.gateway.port is not None:
        host = config.gateway.host or config.server.host
        methods = router_methods(generations, lookups)
        gateway = Gateway(config.gateway, host, methods, authenticator)
        if telemetry.meter_provider is not None:
            gateway_metrics.observe(telemetry.meter_provider.get_meter(SCOPE), gateway)
        await gateway.start()
    return RunningServer(
        server,
        port,
        health_servicer,
        generations,
        route_health,
        tls,
        [telemetry.shutdown],
        gateway,
    )


async def serve(config: Config) -> None:
    """Runs the server until SIGTERM or SIGINT, then shuts down gracefully.

    SIGHUP re-reads the TLS files at the next connection. The signal handlers
    are removed when the server has stopped.
    """
    running = await start_server(config)
    logger.info(
        "llmrouter listening on %s:%d, %s (routes: %s; default: %s)",
        config.server.host,
        running.port,
        describe(config),
        ", ".join(config.routes),
        config.default_route,
    )
    warning = exposure_warning(config, running.port)
    if warning is not None:
        logger.warning(warning)
    if running.gateway is not None:
        host = config.gateway.host or config.server.host
        logger.info(
            "gateway on http://%s:%d: WebSocket at %s, the chat page at /",
            host, running.gateway.port, GATEWAY_PATH,
        )  # fmt: skip
        if config.auth is None and not is_loopback(host):
            logger.warning(
                "the gateway listens on %s without auth: any page allowed by "
                "gateway.allowed_origins, and any non-browser client, can use it",
                host,
            )
    stop = asyncio.Event()
    handlers = {signal.SIGTERM: stop.set, signal.SIGINT: stop.set, signal.SIGHUP: running.reload}
    loop = asyncio.get_running_loop()
    for signum, handler in handlers.items():
        loop.add_signal_handler(signum, handler)
    try:
        await stop.wait()
        await running.stop(config.server.grace_period_seconds)
    finally:
        for signum in handlers:
            loop.remove_signal_handler(signum)
