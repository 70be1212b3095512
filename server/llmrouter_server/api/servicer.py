"""The RouterService servicer: decode, call the domain, encode, map errors.

The streaming RPCs live in their own modules (``generate``, ``control``,
``subscribe``); their methods here are async generators because grpc.aio
decides how to drive a handler from the method itself. The unary lookups are
here.

Requests arrive parsed by the decoding interceptor (``decoding``): a message
whose bytes did not parse is an ``Undecodable``, answered INVALID_ARGUMENT.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from llmrouter_server.api import decode, encode
from llmrouter_server.api.auth import caller
from llmrouter_server.api.control import control
from llmrouter_server.api.decoding import Undecodable, decoded
from llmrouter_server.api.generate import generate
from llmrouter_server.api.stats import stats_response
from llmrouter_server.api.status import Context, abort
from llmrouter_server.api.subscribe import subscribe
from llmrouter_server.auth.principal import Principal
from llmrouter_server.errors import InvalidArgument, RouterError, Unimplemented
from llmrouter_server.streams.service import Generations
from llmrouter_server.telemetry.stats import StatsObserver

DEFAULT_PAGE_SIZE = 100
"""ListStreams page size when the request gives none."""

MAX_RECENT_EVENTS = 1000
"""Most events GetStream returns."""


class RouterServicer(svc_grpc.RouterServiceServicer):
    """Serves ``llmrouter.v1.RouterService`` over the domain's ``Generations``."""

    def __init__(
        self,
        generations: Generations,
        *,
        open_access: bool,
        stats: StatsObserver | None = None,
    ) -> None:
        """Serves ``generations``; ``open_access`` when the server runs without ``auth``.

        ``stats`` answers GetStats; it must be one of ``generations``' observers.
        Without it GetStats is UNIMPLEMENTED.
        """
        self._generations = generations
        self._open = open_access
        self._stats = stats

    def _caller(self) -> Principal:
        return caller(self._open)

    async def Generate(  # noqa: N802 - the RPC's name
        self,
        request_iterator: AsyncIterator[svc_pb.GenerateRequest | Undecodable],
        context: Context,
    ) -> AsyncIterator[svc_pb.GenerateResponse]:
        """Starts (or re-attaches to) a generation and streams its events."""
        principal = self._caller()
        async for response in generate(self._generations, principal, request_iterator, context):
            yield response

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
        try:
            decoded(request)
        except RouterError as error:
            await abort(context, error)
        router = self._generations.router
        return encode.list_models_response(router.routes(), router.default_route)

    async def ListStreams(  # noqa: N802 - the RPC's name
        self, request: svc_pb.ListStreamsRequest | Undecodable, context: Context
    ) -> svc_pb.ListStreamsResponse:
        """Lists running and retained generations, newest first, a page at a time."""
        try:
            query = decoded(request)
            start = _page_start(query.page_token)
            states = decode.states(query.states, "ListStreamsRequest.states")
        except RouterError as error:
            await abort(context, error)
        statuses = self._generations.statuses(self._caller(), states)
        size = query.page_size or DEFAULT_PAGE_SIZE
        page = statuses[start : start + size]
        more = start + size < len(statuses)
        return svc_pb.ListStreamsResponse(
            streams=[encode.stream_status(status) for status in page],
            next_page_token=str(start + size) if more else "",
        )

    async def GetStream(  # noqa: N802 - the RPC's name
        self, request: svc_pb.GetStreamRequest | Undecodable, context: Context
    ) -> svc_pb.GetStreamResponse:
        """Describes one generation and returns its recent events."""
        try:
            query = decoded(request)
            count = min(query.recent_events, MAX_RECENT_EVENTS)
            status, recent = self._generations.describe(self._caller(), query.stream_id, count)
        except RouterError as error:
            await abort(context, error)
        return svc_pb.GetStreamResponse(
            status=encode.stream_status(status),
            recent_events=[encode.stream_event(event) for event in recent],
        )

    async def GetStats(  # noqa: N802 - the RPC's name
        self, request: svc_pb.GetStatsRequest | Undecodable, context: Context
    ) -> svc_pb.GetStatsResponse:
        """Reports counters since the start and figures over the recent window."""
        try:
            query = decoded(request)
            if self._stats is None:
                raise Unimplemented("llmrouter.v1.RouterService/GetStats is not enabled")
            report = self._stats.report(self._caller(), self._generations.router, query.model)
        except RouterError as error:
            await abort(context, error)
        return stats_response(report)


def _page_start(token: str) -> int:
    if not token:
        return 0
    if not (token.isascii() and token.isdigit()):  # str.isdigit() also takes "²", int() not
        raise InvalidArgument("ListStreamsRequest.page_token", "is not a token this server gave")
    return int(token)
