"""Client: the entry point, one channel to one server."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc

from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from ._channel import TLS, open_channel
from ._chat import ChatSession
from ._control import Control
from ._errors import RouterError
from ._generation import Generation
from ._reconnect import Reconnect
from ._subscription import Subscription

T = TypeVar("T")


class Client:
    """A client of one llmrouter server; use it as ``async with Client(...)``.

    Args:
        address: The server's ``host:port``; plaintext unless ``tls`` is given.
        api_key: Sent as ``authorization: Bearer <key>`` metadata on every call,
            the stub's included; a server that does not know it answers
            ``UNAUTHENTICATED``, one whose role does not allow a call
            ``PERMISSION_DENIED``.
        tls: TLS (mutual TLS with a client certificate) for the channel.
        channel: A channel to use instead (``open_channel`` makes one with a key
            and TLS); ``close`` leaves it open.
        reconnect: Re-attach generations and subscriptions after a lost connection.

    Raises:
        TypeError: ``channel`` is given with ``api_key`` or ``tls``, which only
            apply to a channel the client opens.
        ValueError: The key is empty or not printable ASCII without spaces.
    """

    def __init__(
        self,
        address: str = "localhost:50051",
        *,
        api_key: str | None = None,
        tls: TLS | None = None,
        channel: grpc.aio.Channel | None = None,
        reconnect: Reconnect | None = None,
    ) -> None:
        if channel is not None and (api_key is not None or tls is not None):
            raise TypeError("pass api_key and tls to open_channel for a channel of your own")
        self._own_channel = channel is None
        self._channel = channel or open_channel(address, api_key=api_key, tls=tls)
        self.stub = svc_grpc.RouterServiceStub(self._channel)
        """The generated stub, for calls this class does not wrap."""
        self._reconnect = reconnect

    def generate(self, request: str | gen_pb.StartGeneration, /, **fields: Any) -> Generation:
        """Starts a generation; iterate the result for its events.

        Args:
            request: A prompt, or a whole ``StartGeneration``.
            **fields: With a prompt, the other ``StartGeneration`` fields, such as
                ``model="..."`` or ``sampling={"max_tokens": 16}``.
        """
        if isinstance(request, str):
            start = gen_pb.StartGeneration(prompt=request, **fields)
        elif fields:
            raise TypeError("pass fields inside the StartGeneration, or pass a prompt")
        else:
            start = gen_pb.StartGeneration()
            start.CopyFrom(request)
        if self._reconnect is not None and not start.HasField("on_disconnect"):
            start.on_disconnect.CopyFrom(self._reconnect.disconnect_policy())
        return Generation(self.stub, svc_pb.GenerateRequest(start=start), self._reconnect)

    def attach(
        self, stream_id: str, from_offset: int = 0, *, flow: Mapping[str, Any] | None = None
    ) -> Generation:
        """Re-attaches to a generation started with ``on_disconnect`` DETACH.

        Its caller has gone (or it has finished and the server still retains
        it); its events stream from ``from_offset``. An unknown stream id raises
        ``NOT_FOUND``, a generation another caller holds ``FAILED_PRECONDITION``.

        Args:
            stream_id: The generation's id.
            from_offset: The first offset to deliver.
            flow: The ``FlowControl`` fields, such as ``{"mode": "FLOW_MODE_CREDIT"}``.
        """
        attach = gen_pb.AttachGeneration(stream_id=stream_id, from_offset=from_offset, flow=flow)
        return Generation(self.stub, svc_pb.GenerateRequest(attach=attach), self._reconnect)

    def chat(
        self,
        *,
        system: str = "",
        model: str = "",
        stop: Sequence[str] = (),
        sampling: Mapping[str, Any] | None = None,
    ) -> ChatSession:
        """Starts a conversation that keeps its history, model, sampling and stop sequences."""
        return ChatSession(self, system=system, model=model, stop=stop, sampling=sampling)

    def subscribe(self) -> Subscription:
        """Opens a Subscribe call; add subscriptions with ``add``."""
        return Subscription(self.stub, self._reconnect)

    def control(self) -> Control:
        """Opens a Control call for operator commands (needs a running event loop)."""
        return Control(self.stub)

    async def list_models(self) -> list[ops_pb.Route]:
        """The configured routes, the default one marked."""
        reply = await _unary(self.stub.ListModels(svc_pb.ListModelsRequest()))
        return list(reply.routes)

    async def list_streams(self, **fields: Any) -> svc_pb.ListStreamsResponse:
        """One page of generations, newest first (``states``, ``page_size``, ``page_token``)."""
        return await _unary(self.stub.ListStreams(svc_pb.ListStreamsRequest(**fields)))

    async def get_stream(self, stream_id: str, recent_events: int = 0) -> svc_pb.GetStreamResponse:
        """The status of one generation and up to ``recent_events`` of its latest events."""
        request = svc_pb.GetStreamRequest(stream_id=stream_id, recent_events=recent_events)
        return await _unary(self.stub.GetStream(request))

    async def get_stats(self, model: str = "") -> svc_pb.GetStatsResponse:
        """The analytics report, overall and per route; ``model`` selects one route.

        An unknown ``model`` raises ``NOT_FOUND``; with ``auth`` on, only admin keys
        may ask (else ``PERMISSION_DENIED``).
        """
        return await _unary(self.stub.GetStats(svc_pb.GetStatsRequest(model=model)))

    async def close(self) -> None:
        """Closes the channel this client opened."""
        if self._own_channel:
            await self._channel.close(None)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


async def _unary(call: Awaitable[T]) -> T:
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        raise RouterError.from_rpc_error(error) from error
