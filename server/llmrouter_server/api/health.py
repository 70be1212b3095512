"""Per-route ``grpc.health.v1`` statuses that follow the targets' circuits.

Each route is a health service of its own name: SERVING while at least one
of its targets' circuits is not open, NOT_SERVING while all are open. An
open circuit turns half-open by time alone, so a timer re-reads it then.
"""

from __future__ import annotations

import asyncio

from grpc_health.v1 import health_pb2

# The asyncio servicer, which the package also exposes untyped as ``health.aio``.
from grpc_health.v1._async import HealthServicer

from llmrouter_server.routing.breaker import CircuitState, TargetHealth
from llmrouter_server.routing.route import Route

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class RouteHealth:
    """Keeps each route's health status in step with its targets' circuits."""

    def __init__(self, servicer: HealthServicer, routes: list[Route]) -> None:
        self._servicer = servicer
        self._routes = routes
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}  # one per target
        self._stopped = False
        for target in {id(t.health): t.health for r in routes for t in r.targets}.values():
            target.observers.append(self._changed)

    async def start(self) -> None:
        """Sets every route's status now."""
        for route in self._routes:
            await self._servicer.set(route.name, _status(route))

    def stop(self) -> None:
        """Stops following the circuits (the server goes NOT_SERVING as a whole):
        a status change not yet written is dropped, so none can follow NOT_SERVING."""
        self._stopped = True
        for timer in self._timers.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()

    def _changed(self, target: TargetHealth, state: CircuitState) -> None:
        if self._stopped:
            return
        loop = asyncio.get_running_loop()
        if state is CircuitState.OPEN:
            # A circuit reopened before its timer ran needs only the new timer.
            previous = self._timers.pop(target.name, None)
            if previous is not None:
                previous.cancel()
            self._timers[target.name] = loop.call_later(target.cooldown, target.refresh)
        for route in self._routes:
            if any(t.health is target for t in route.targets):
                task = loop.create_task(self._servicer.set(route.name, _status(route)))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)


def _status(route: Route) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
    open_ = all(t.health.state is CircuitState.OPEN for t in route.targets)
    return _NOT_SERVING if open_ else _SERVING
