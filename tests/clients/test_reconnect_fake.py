"""Reconnecting, against a scripted server that records the requests it gets.

The first call sends three events and then fails with UNAVAILABLE, as a
dropped connection does; a later call (an attach, or a subscription from an
offset) replays from one offset before the one asked for, a duplicate the real
server never sends but the client must drop, and completes the generation.
Scripted to end the first call as a failed route does instead (UNAVAILABLE
with a ``RouteFailure`` detail), it shows that the client does not re-attach.
``test_reconnect.py`` runs the same paths against ``llmrouter serve``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import status_pb2
from grpc_status import rpc_status
from llmrouter import Client, Reconnect, RouterError
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

pytestmark = pytest.mark.timeout(30)

SCRIPT = [
    ev_pb.StreamEvent(started=ev_pb.Started()),
    ev_pb.StreamEvent(chunk=ev_pb.Chunk(text="Once")),
    ev_pb.StreamEvent(chunk=ev_pb.Chunk(text=" upon")),
    ev_pb.StreamEvent(chunk=ev_pb.Chunk(text=" a time")),
    ev_pb.StreamEvent(completed=ev_pb.Completed(finish_reason=ev_pb.FINISH_REASON_LENGTH)),
]


def route_failed() -> grpc.Status:
    """UNAVAILABLE with a RouteFailure detail, as when every attempt of a route failed."""
    failure = ev_pb.RouteFailure(
        attempts=[ev_pb.AttemptFailed(attempt=1, error_reason="BACKEND_CONNECT")]
    )
    detail = any_pb2.Any()
    detail.Pack(failure)
    code = grpc.StatusCode.UNAVAILABLE.value[0]
    return rpc_status.to_status(
        status_pb2.Status(code=code, message="1 attempt failed", details=[detail])
    )


def replay(resuming: bool, from_offset: int) -> list[ev_pb.StreamEvent]:
    """The first three events, or, when resuming, all from one before ``from_offset``."""
    offsets = range(from_offset - 1, len(SCRIPT)) if resuming else range(3)
    events = [ev_pb.StreamEvent(stream_id="gen-1", offset=offset) for offset in offsets]
    for event in events:
        event.MergeFrom(SCRIPT[event.offset])
    return events


class DroppingServicer(svc_grpc.RouterServiceServicer):
    """Drops the first call after three events; serves the rest when resumed."""

    def __init__(self) -> None:
        self.requests: list[svc_pb.GenerateRequest] = []
        self.adds: list[svc_pb.SubscribeRequest] = []
        self.busy = 0
        """How many attaches are refused, as while the server still holds the lost call."""
        self.route_failed = False
        """The first call ends as a failed route does instead of as a lost connection."""

    async def Generate(  # type: ignore[override]  # noqa: N802 - the RPC's name
        self, request_iterator: AsyncIterator[svc_pb.GenerateRequest], context: Any
    ) -> AsyncIterator[svc_pb.GenerateResponse]:
        first = await anext(request_iterator)
        self.requests.append(first)
        attach = first.WhichOneof("action") == "attach"
        if attach and self.busy:
            self.busy -= 1
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "attached to another caller")
        for event in replay(attach, first.attach.from_offset):
            yield svc_pb.GenerateResponse(event=event)
        if not attach and self.route_failed:
            status = route_failed()
            await context.abort(status.code, status.details, status.trailing_metadata)
        if not attach:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "connection lost")

    async def Subscribe(  # type: ignore[override]  # noqa: N802 - the RPC's name
        self, request_iterator: AsyncIterator[svc_pb.SubscribeRequest], context: Any
    ) -> AsyncIterator[svc_pb.SubscribeResponse]:
        first = await anext(request_iterator)
        self.adds.append(first)
        resuming = len(self.adds) > 1
        for event in replay(resuming, first.add.from_offset):
            yield svc_pb.SubscribeResponse(event=event)
        if not resuming:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "connection lost")
        ended = ops_pb.SubscriptionEnded(stream_id="gen-1", next_offset=len(SCRIPT))
        yield svc_pb.SubscribeResponse(ended=ended)


@pytest.fixture
async def dropping() -> AsyncIterator[tuple[str, DroppingServicer]]:
    """The servicer on a loopback port."""
    servicer = DroppingServicer()
    server = grpc.aio.server()
    svc_grpc.add_RouterServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        await server.stop(0)


async def test_reattaches_from_the_next_offset_without_duplicates(
    dropping: tuple[str, DroppingServicer],
) -> None:
    address, servicer = dropping

    async with Client(address, reconnect=Reconnect(max_attempts=2, backoff=0.001)) as client:
        generation = client.generate("hi")
        offsets = [event.offset async for event in generation]

    assert offsets == [0, 1, 2, 3, 4]
    assert generation.text == "Once upon a time"
    assert len(servicer.requests) == 2
    start, attach = servicer.requests
    assert start.start.on_disconnect.action == gen_pb.DISCONNECT_ACTION_DETACH
    assert (attach.attach.stream_id, attach.attach.from_offset) == ("gen-1", 3)


async def test_without_reconnect_unavailable_is_raised(
    dropping: tuple[str, DroppingServicer],
) -> None:
    address, servicer = dropping

    async with Client(address) as client:
        generation = client.generate("hi")
        with pytest.raises(RouterError) as raised:
            await generation.result()

    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert generation.text == "Once upon"
    assert len(servicer.requests) == 1
    assert not servicer.requests[0].start.HasField("on_disconnect")


async def test_subscription_resubscribes_from_the_next_offset_without_duplicates(
    dropping: tuple[str, DroppingServicer],
) -> None:
    address, servicer = dropping

    async with Client(address, reconnect=Reconnect(max_attempts=2, backoff=0.001)) as client:
        subscription = client.subscribe()
        await subscription.add("gen-1")
        items = [item async for item in subscription]

    assert [item.event.offset for item in items[:-1]] == [0, 1, 2, 3, 4]
    assert items[-1].ended.next_offset == len(SCRIPT)
    assert [(add.add.stream_id, add.add.from_offset) for add in servicer.adds] == [
        ("gen-1", 0),
        ("gen-1", 3),
    ]


async def test_an_attach_refused_while_the_server_holds_the_lost_call_is_retried(
    dropping: tuple[str, DroppingServicer],
) -> None:
    address, servicer = dropping
    servicer.busy = 2

    async with Client(address, reconnect=Reconnect(max_attempts=3, backoff=0.001)) as client:
        result = await client.generate("hi").result()

    assert result.text == "Once upon a time"
    actions = [request.WhichOneof("action") for request in servicer.requests]
    assert actions == ["start", "attach", "attach", "attach"]


async def test_reattaching_gives_up_after_max_attempts(
    dropping: tuple[str, DroppingServicer],
) -> None:
    address, servicer = dropping
    servicer.busy = 5

    async with Client(address, reconnect=Reconnect(max_attempts=2, backoff=0.001)) as client:
        with pytest.raises(RouterError) as raised:
            await client.generate("hi").result()

    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert len(servicer.requests) == 3


async def test_a_failed_route_is_raised_without_reattaching(
    dropping: tuple[str, DroppingServicer],
) -> None:
    address, servicer = dropping
    servicer.route_failed = True

    async with Client(address, reconnect=Reconnect(max_attempts=2, backoff=0.001)) as client:
        with pytest.raises(RouterError) as raised:
            await client.generate("hi").result()

    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert [attempt.attempt for attempt in raised.value.attempts] == [1]
    assert len(servicer.requests) == 1
