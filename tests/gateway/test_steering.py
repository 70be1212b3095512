"""Pause, resume and cancel over a socket; what a call's end does to its generation."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import grpc
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from llmrouter_server.app import start_server
from tests.gateway.helpers import (
    Client,
    as_json,
    error_info,
    events,
    gateway_config,
    generation,
    joined,
    kind,
    offsets,
    read_json,
    socket,
)
from tests.helpers import Served, eventually, start
from tests.security.scripted import HELD_ANSWER, HeldBackend, backends

DETACH = {"action": "DISCONNECT_ACTION_DETACH", "detach_ttl": timedelta(seconds=30)}
CANCELLED_CALL = {
    "code": 1,
    "message": "the client cancelled the call",
    "details": [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "CANCELLED",
            "domain": "llmrouter.v1",
        }
    ],
}


def held_start(stream_id: str, **fields: Any) -> Any:
    """A start on ``held-model``, as JSON: its first word comes, then it waits."""
    return as_json(start(model="held-model", stream_id=stream_id, **fields))


async def opened(client: Client, stream_id: str, **fields: Any) -> list[Any]:
    """Opens Generate call ``g`` on ``held-model``; returns its first two messages."""
    await client.open("g", "Generate", held_start(stream_id, **fields))
    return [await client.message("g") for _ in range(2)]


async def last_event(served: Served, stream_id: str) -> Any:
    """The newest event of a generation, over gRPC."""
    reply = await served.stub.GetStream(
        svc_pb.GetStreamRequest(stream_id=stream_id, recent_events=1)
    )
    return as_json(reply)["recentEvents"][0]


async def test_pause_resume_and_a_steering_cancel_over_the_socket(
    served: Served, client: Client, held: HeldBackend
) -> None:
    first = await opened(client, "job")
    # A later frame may name the call's method again.
    await client.send({"id": "g", "method": "Generate", "message": {"pause": {"reason": "away"}}})
    paused = await client.message("g")
    state = (await served.stub.GetStream(svc_pb.GetStreamRequest(stream_id="job"))).status
    await client.send({"id": "g", "message": {"resume": {}}})
    resumed = await client.message("g")
    await client.send({"id": "g", "message": {"cancel": {"reason": "bye"}}})
    rest, status = await client.rest("g")

    assert paused["event"]["paused"] == {"reason": "away"}
    assert state.state == 3  # STREAM_STATE_PAUSED
    assert resumed["event"]["resumed"] == {}
    assert status == {"code": 0}
    completed = rest[-1]["event"]["completed"]
    assert (completed["cancelledBy"], completed["cancelReason"]) == ("CANCELLED_BY_CALLER", "bye")
    assert offsets([*first, paused, resumed, *rest]) == list(range(len(rest) + 4))


async def test_a_generate_call_ends_with_its_generation_without_an_end_frame(
    client: Client, held: HeldBackend
) -> None:
    first = await opened(client, "job")
    held.release.set()
    rest, status = await client.rest("g")

    assert status == {"code": 0}
    assert joined(first + rest) == HELD_ANSWER
    assert kind(events(rest)[-1]) == "completed"


async def test_a_cancel_frame_ends_the_call_and_cancels_the_generation(
    served: Served, client: Client
) -> None:
    await opened(client, "job")
    await client.send({"id": "g", "cancel": True})
    rest, status = await client.rest("g")

    assert (rest, status) == ([], CANCELLED_CALL)
    job = generation(served, "job")
    await eventually(lambda: job.state.value == "cancelled")
    assert (await last_event(served, "job"))["completed"]["cancelledBy"] == "CANCELLED_BY_CALLER"


async def test_a_cancel_frame_leaves_a_detach_generation_running(
    served: Served, client: Client
) -> None:
    await opened(client, "job", on_disconnect=DETACH)
    await client.send({"id": "g", "cancel": True})
    _, status = await client.rest("g")

    job = generation(served, "job")
    await eventually(lambda: job.detached)
    assert status == CANCELLED_CALL
    assert job.state.value == "running"


async def test_closing_the_socket_cancels_a_cancel_generation(served: Served) -> None:
    async with socket(served) as client:
        await opened(client, "job")
    job = generation(served, "job")

    await eventually(lambda: job.state.value == "cancelled")
    completed = (await last_event(served, "job"))["completed"]
    assert (completed["finishReason"], completed["cancelledBy"]) == (
        "FINISH_REASON_CANCELLED", "CANCELLED_BY_CALLER"
    )  # fmt: skip


async def test_a_detach_generation_outlives_its_sockets_and_is_attached_anywhere(
    served: Served, held: HeldBackend
) -> None:
    async with socket(served) as client:
        first = await opened(client, "job", on_disconnect=DETACH)
    job = generation(served, "job")
    await eventually(lambda: job.detached)
    async with socket(served) as client:
        attach = {"attach": {"streamId": "job", "fromOffset": "1"}}
        await client.open("a", "Generate", attach)
        again = await client.message("a")
    await eventually(lambda: job.detached)
    attach_grpc = svc_pb.GenerateRequest(attach={"stream_id": "job", "from_offset": 2})
    call = served.stub.Generate(iter([attach_grpc]))
    held.release.set()
    rest = await read_json(call)

    assert job.state.value == "completed"
    assert again == first[1]  # the first word again, from offset 1
    assert offsets(first + rest) == list(range(len(rest) + 2))
    assert joined(first + rest) == HELD_ANSWER
    assert kind(events(rest)[-1]) == "completed"


async def test_a_call_past_its_timeout_is_deadline_exceeded(served: Served, client: Client) -> None:
    await client.open("g", "Generate", held_start("job"), timeoutMs=200)
    messages, status = await client.rest("g")

    assert [kind(event) for event in events(messages)] == ["started", "chunk"]
    assert status["code"] == 4
    assert status["message"] == "the call's timeoutMs (200) passed"
    job = generation(served, "job")
    await eventually(lambda: job.state.value == "cancelled")
    assert (await last_event(served, "job"))["completed"]["cancelledBy"] == "CANCELLED_BY_CALLER"


async def test_a_shutdown_ends_a_running_call_unavailable_then_closes_the_socket(
    held: HeldBackend,
) -> None:
    server = await start_server(gateway_config(), backends(held))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        served = Served(server, channel, svc_grpc.RouterServiceStub(channel))
        async with socket(served) as client:
            await opened(client, "job")
            stopping = asyncio.create_task(server.stop(0.2))
            _, status = await client.rest("g")
            await stopping
            await client.ws.wait_closed()

    assert status == {
        "code": 14,
        "message": "the server shut down; re-attach elsewhere from offset 2",
        "details": [error_info("UNAVAILABLE", stream_id="job", offset="2")],
    }
    assert (client.ws.close_code, client.ws.close_reason) == (1001, "server shutting down")
