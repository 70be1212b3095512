"""The unary lookups (ListModels, ListStreams, GetStream, GetStats): request in, response out.

Shared by the gRPC servicer and the WebSocket gateway; each raises the
domain's errors and leaves the status to its caller's transport.
"""

from __future__ import annotations

from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.api import decode, encode
from llmrouter_server.api.stats import stats_response
from llmrouter_server.auth.principal import Principal
from llmrouter_server.errors import InvalidArgument, Unimplemented
from llmrouter_server.streams.service import Generations
from llmrouter_server.telemetry.stats import StatsObserver

DEFAULT_PAGE_SIZE = 100
"""ListStreams page size when the request gives none."""

MAX_RECENT_EVENTS = 1000
"""Most events GetStream returns."""


class Lookups:
    """Answers the unary lookups over ``generations``."""

    def __init__(self, generations: Generations, stats: StatsObserver | None) -> None:
        """``stats`` answers GetStats (one of ``generations``' observers); without it
        GetStats is UNIMPLEMENTED."""
        self._generations = generations
        self._stats = stats

    def list_models(
        self, _principal: Principal, _query: svc_pb.ListModelsRequest
    ) -> svc_pb.ListModelsResponse:
        """The configured routes."""
        router = self._generations.router
        return encode.list_models_response(router.routes(), router.default_route)

    def list_streams(
        self, principal: Principal, query: svc_pb.ListStreamsRequest
    ) -> svc_pb.ListStreamsResponse:
        """Running and retained generations, newest first, a page at a time."""
        start = _page_start(query.page_token)
        states = decode.states(query.states, "ListStreamsRequest.states")
        statuses = self._generations.statuses(principal, states)
        size = query.page_size or DEFAULT_PAGE_SIZE
        page = statuses[start : start + size]
        more = start + size < len(statuses)
        return svc_pb.ListStreamsResponse(
            streams=[encode.stream_status(status) for status in page],
            next_page_token=str(start + size) if more else "",
        )

    def get_stream(
        self, principal: Principal, query: svc_pb.GetStreamRequest
    ) -> svc_pb.GetStreamResponse:
        """One generation's status and its recent events."""
        count = min(query.recent_events, MAX_RECENT_EVENTS)
        status, recent = self._generations.describe(principal, query.stream_id, count)
        return svc_pb.GetStreamResponse(
            status=encode.stream_status(status),
            recent_events=[encode.stream_event(event) for event in recent],
        )

    def get_stats(
        self, principal: Principal, query: svc_pb.GetStatsRequest
    ) -> svc_pb.GetStatsResponse:
        """Counters since the start and figures over the recent window."""
        if self._stats is None:
            raise Unimplemented("llmrouter.v1.RouterService/GetStats is not enabled")
        report = self._stats.report(principal, self._generations.router, query.model)
        return stats_response(report)


def _page_start(token: str) -> int:
    if not token:
        return 0
    if not (token.isascii() and token.isdigit()):  # str.isdigit() also takes "²", int() not
        raise InvalidArgument("ListStreamsRequest.page_token", "is not a token this server gave")
    return int(token)
