"""The RouterService servicer: decode, call the domain, encode, map errors.

The streaming RPCs live in their own modules (``generate``, ``control``,
``subscribe``); their methods here are async generators because grpc.aio
decides how to drive a handler from the method itself. The unary lookups are
here.

Requests arrive parsed by the decoding interceptor (``decoding``): a message
whose bytes did not parse is an ``Undecodable``, answered INVALID_ARGUMENT.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from llmrouter_server.api import decode
from llmrouter_server.api.auth import caller
from llmrouter_server.api.control import control
from llmrouter_server.api.decoding import Undecodable, decoded
from llmrouter_server.api.generate import generate
from llmrouter_server.api.lookups import Lookups
from llmrouter_server.api.status import Context, abort
from llmrouter_server.api.subscribe import subscribe
from llmrouter_server.auth.principal import Principal
from llmrouter_server.errors import RouterError
from llmrouter_server.streams.service import Generations

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")


class RouterServicer(svc_grpc.RouterServiceServicer):
    """Serves ``llmrouter.v1.RouterService`` over the domain's ``Generations``."""

    def __init__(self, generations: Generations, lookups: Lookups, *, open_access: bool) -> None:
        """Serves ``generations`` and the ``lookups`` over them; ``open_access`` when
        the server runs without ``auth``."""
        self._generations = generations
        self._open = open_access
        self._lookups = lookups

    def _caller(self) -> Principal:
        return caller(self._open)

    async def Generate(  # noqa: N802 - the RPC's name
        self,
        request_iterator: AsyncIterator[svc_pb.GenerateRequest | Undecodable],
        context: Context,
    ) -> AsyncIterator[svc_pb.GenerateResponse]:
        """Starts (or re-attaches to) a generation and streams its events."""
        try:
            principal = self._caller()
            remaining = context.time_remaining()
            deadline = None if remaining is None else time.monotonic() + remaining
            trace = decode.trace_metadata(context.invocation_metadata())
            async for response in generate(
                self._generations, principal, request_iterator, deadline, trace
            ):
                yield response
        except RouterError as error:
            await abort(context, error)

    async def Control(  # noqa: N802 - the RPC's name
        self,
        request_iterator: AsyncIterator[svc_pb.ControlRequest | Undecodable],
        context: Context,
    ) -> AsyncIterator[svc_pb.ControlResponse]:
        """Runs operator commands and pushes watched state changes."""
        try:
            async for response in control(self._generations, self._caller(), request_iterator):
                yield response
        except RouterError as error:
            await abort(context, error)

    async def Subscribe(  # noqa: N802 - the RPC's name
        self,
        request_iterator: AsyncIterator[svc_pb.SubscribeRequest | Undecodable],
        context: Context,
    ) -> AsyncIterator[svc_pb.SubscribeResponse]:
        """Follows generations by id, replay then live."""
        try:
            async for response in subscribe(self._generations, self._caller(), request_iterator):
                yield response
        except RouterError as error:
            await abort(context, error)

    async def ListModels(  # noqa: N802 - the RPC's name
        self, request: svc_pb.ListModelsRequest | Undecodable, context: Context
    ) -> svc_pb.ListModelsResponse:
        """Lists the configured routes."""
        return await _unary(self._lookups.list_models, self._caller, request, context)

    async def ListStreams(  # noqa: N802 - the RPC's name
        self, request: svc_pb.ListStreamsRequest | Undecodable, context: Context
    ) -> svc_pb.ListStreamsResponse:
        """Lists running and retained generations, newest first, a page at a time."""
        return await _unary(self._lookups.list_streams, self._caller, request, context)

    async def GetStream(  # noqa: N802 - the RPC's name
        self, request: svc_pb.GetStreamRequest | Undecodable, context: Context
    ) -> svc_pb.GetStreamResponse:
        """Describes one generation and returns its recent events."""
        return await _unary(self._lookups.get_stream, self._caller, request, context)

    async def GetStats(  # noqa: N802 - the RPC's name
        self, request: svc_pb.GetStatsRequest | Undecodable, context: Context
    ) -> svc_pb.GetStatsResponse:
        """Reports counters since the start and figures over the recent window."""
        return await _unary(self._lookups.get_stats, self._caller, request, context)


async def _unary(
    lookup: Callable[[Principal, RequestT], ResponseT],
    caller: Callable[[], Principal],
    request: RequestT | Undecodable,
    context: Context,
) -> ResponseT:
    try:
        return lookup(caller(), decoded(request))
    except RouterError as error:
        await abort(context, error)
