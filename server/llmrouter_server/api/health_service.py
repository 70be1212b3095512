"""The ``grpc.health.v1.Health`` servicer, with the ``List`` RPC the library lacks.

grpcio-health-checking's asyncio servicer implements ``Check`` and ``Watch``
but not ``List``: its base class's placeholder raises ``NotImplementedError``
in a worker thread, so callers got UNIMPLEMENTED and the server logged a
traceback. ``List`` here answers from the same statuses ``Check`` reads.

Its ``Watch`` calls last until the client leaves; when the server stops,
``close`` ends them with UNAVAILABLE (the server cancelling them would log a
traceback for each, after keeping the process for the whole flush time).
"""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2

# The asyncio servicer, which the package also exposes untyped as ``health.aio``.
from grpc_health.v1._async import HealthServicer as _AsyncHealthServicer

MAX_LISTED_SERVICES = 100
"""Most services ``List`` reports; beyond it answers RESOURCE_EXHAUSTED, as the spec allows."""


class HealthServicer(_AsyncHealthServicer):  # type: ignore[misc]  # the package is untyped
    """Serves ``grpc.health.v1.Health``: ``Check``, ``Watch`` and ``List``."""

    def __init__(self) -> None:
        super().__init__()
        self._closed = asyncio.Event()

    def close(self) -> None:
        """Ends every ``Watch`` call, now and from now on, with UNAVAILABLE."""
        self._closed.set()

    async def Watch(  # noqa: N802 - the RPC's name
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> None:
        """The library's ``Watch``, until the client leaves or ``close`` is called."""
        watch = asyncio.ensure_future(super().Watch(request, context))
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait((watch, closed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watch, closed):
                task.cancel()
        if not watch.cancelled() and watch.done():
            watch.result()  # the library's error, if it had one
            return
        await context.abort(
            grpc.StatusCode.UNAVAILABLE, "the server is shutting down; watch another replica"
        )

    async def List(  # noqa: N802 - the RPC's name
        self,
        request: health_pb2.HealthListRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> health_pb2.HealthListResponse:
        """Every service with a status, the server as a whole ("") among them."""
        # The map the library's Check and Watch read; set() and shutdown write it.
        statuses = dict(self._server_status)
        if len(statuses) > MAX_LISTED_SERVICES:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{len(statuses)} services, more than the {MAX_LISTED_SERVICES} List reports",
            )
        return health_pb2.HealthListResponse(
            statuses={
                name: health_pb2.HealthCheckResponse(status=status)
                for name, status in statuses.items()
            }
        )
