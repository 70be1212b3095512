"""Assembles and runs the gRPC server: RouterService, health, reflection.

The port is plaintext, TLS or mutual TLS (``transport``); SIGHUP re-reads the
TLS files at the next connection.

Shutdown (SIGTERM or SIGINT): health turns NOT_SERVING, new generations are
refused with UNAVAILABLE, running ones get the grace period, the rest are
cancelled: their log ends with ``completed`` (CANCELLED, by SHUTDOWN).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from llmrouter.v1 import service_pb2, service_pb2_grpc

from llmrouter_server.api.auth import interceptors
from llmrouter_server.api.health import RouteHealth
from llmrouter_server.api.health_service import HealthServicer
from llmrouter_server.api.reflection_service import enable_reflection
from llmrouter_server.api.servicer import RouterServicer
from llmrouter_server.backends.base import Backend
from llmrouter_server.backends.build import build_backends
from llmrouter_server.config import Config
from llmrouter_server.routing.router import build_router
from llmrouter_server.streams.service import Generations
from llmrouter_server.transport import ServerTLS, describe, exposure_warning, listen

logger = logging.getLogger(__name__)


_FLUSH_SECONDS = 1.0
"""Time calls get to write their final status once their generation ended."""

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

    def reload(self) -> None:
        """Re-reads what can change while serving (SIGHUP): the TLS files."""
        if self.tls is None:
            logger.info("SIGHUP: nothing to reload (the port is plaintext)")
        else:
            self.tls.reload()

    async def stop(self, grace: float) -> None:
        """Refuses new work, lets running generations finish for ``grace`` seconds, stops.

        Generations still running after the grace period are cancelled: their
        log ends with ``completed`` (CANCELLED, by SHUTDOWN).
        """
        self.route_health.stop()
        await self.health.enter_graceful_shutdown()
        self.generations.stop_accepting()
        await self.generations.drain(grace)
        await self.generations.cancel_all()
        await self.server.stop(_FLUSH_SECONDS)
        await self.generations.close()


async def start_server(
    config: Config, backends: Mapping[str, Backend] | None = None
) -> RunningServer:
    """Builds the backends (unless given), binds the port and starts serving.

    Raises:
        ConfigError: A ``tls`` file is unreadable or invalid (checked before
            any backend is built), or a backend cannot be built.
    """
    tls = ServerTLS(config.tls) if config.tls is not None else None
    built = dict(backends) if backends is not None else build_backends(config)
    generations = Generations(build_router(config, built), config.limits, config.streams)
    server = grpc.aio.server(
        interceptors=interceptors(config),
        options=[
            ("grpc.max_receive_message_length", config.server.max_receive_message_bytes),
            ("grpc.max_concurrent_streams", config.limits.max_calls_per_connection),
            ("grpc.so_reuseport", 0),
        ],
    )
    service_pb2_grpc.add_RouterServiceServicer_to_server(
        RouterServicer(generations, open_access=config.auth is None), server
    )
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_reflection(server, [SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME])
    port = listen(server, config.server, tls)
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    route_health = RouteHealth(health_servicer, generations.router.routes())
    await route_health.start()
    return RunningServer(server, port, health_servicer, generations, route_health, tls)


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
    stop = asyncio.Event()
    handlers = {signal.SIGTERM: stop.set, signal.SIGINT: stop.set, signal.SIGHUP: running.reload}
    loop = asyncio.get_running_loop()
    for signum, handler in handlers.items():
        loop.add_signal_handler(signum, handler)
    try:
        await stop.wait()
        logger.info("shutting down (grace %.1fs)", config.server.grace_period_seconds)
        await running.stop(config.server.grace_period_seconds)
    finally:
        for signum in handlers:
            loop.remove_signal_handler(signum)
