"""Every RPC through the gateway gives the messages the gRPC port gives for the same request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from llmrouter.v1 import service_pb2 as svc_pb

from tests.gateway.helpers import (
    Client,
    as_json,
    events,
    generation,
    joined,
    kind,
    masked,
    offsets,
    read_json,
    renamed,
    socket,
)
from tests.helpers import Served, control_request, eventually, loopback_config, serving, start
from tests.security.scripted import ANSWER, HELD_ANSWER, HeldBackend

DETAILED = {"include_progress": True, "include_metadata": True}


async def grpc_generate(served: Served, request: svc_pb.GenerateRequest) -> list[Any]:
    return [as_json(response) async for response in served.stub.Generate(iter([request]))]


async def grpc_replay(served: Served, stream_id: str) -> list[Any]:
    add = svc_pb.SubscribeRequest(add={"stream_id": stream_id, "from_offset": 0})
    return [as_json(item) async for item in served.stub.Subscribe(iter([add]))]


def same_but_ids(ws: list[Any], grpc: list[Any]) -> None:
    """Equal once stream ids and timings are masked."""
    ws_id, grpc_id = ws[0]["event"]["streamId"], grpc[0]["event"]["streamId"]
    assert masked(renamed(ws, ws_id, "<id>")) == masked(renamed(grpc, grpc_id, "<id>"))


async def test_generate_gives_the_grpc_events_offsets_included(
    served: Served, client: Client
) -> None:
    request = start(stream_options=DETAILED)

    messages, status = await client.call("g", "Generate", request)
    expected = await grpc_generate(served, request)

    assert status == {"code": 0}
    same_but_ids(messages, expected)
    assert offsets(messages) == list(range(7))
    assert joined(messages) == ANSWER
    assert [m["event"]["chunk"]["progress"]["completionTokens"] for m in messages[1:6]] == [
        1, 2, 3, 4, 5
    ]  # fmt: skip
    # The very events of the generation's log, byte for byte once parsed.
    replay = await grpc_replay(served, messages[0]["event"]["streamId"])
    assert [item["event"] for item in replay if "event" in item] == events(messages)


async def test_an_id_is_free_again_after_its_status(client: Client) -> None:
    first, _ = await client.call("same", "Generate", start())
    second, status = await client.call("same", "Generate", start())

    assert status == {"code": 0}
    assert joined(first) == joined(second) == ANSWER
    assert first[0]["event"]["streamId"] != second[0]["event"]["streamId"]


@pytest.fixture(scope="module")
async def embedded() -> AsyncIterator[Served]:
    config = loopback_config(
        gateway={"port": 0}, limits={"max_tokens_cap": 64, "default_max_tokens": 16}
    )
    async with serving(config) as served:
        yield served


async def test_generate_on_the_embedded_model_matches_grpc_at_temperature_zero(
    embedded: Served,
) -> None:
    request = start("Name three colours.", sampling={"max_tokens": 12})
    # llama.cpp reuses the context's matching prefix, and greedy text after a reused
    # prompt can differ from a cold one's: both compared runs follow the same prompt.
    await grpc_generate(embedded, request)
    expected = await grpc_generate(embedded, request)

    async with socket(embedded) as client:
        messages, status = await client.call("g", "Generate", request)

    assert status == {"code": 0}
    same_but_ids(messages, expected)
    assert messages[-1]["event"]["completed"]["usage"]["completionTokens"] == 12


def command(request_id: str, name: str, stream_id: str, **fields: Any) -> Any:
    """A Control request with one command on ``stream_id``."""
    target = {"stream_ids": [stream_id]} if name == "watch" else {"stream_id": stream_id}
    return control_request(request_id, **{name: {**target, **fields}})


async def grpc_reply(served: Served, request: svc_pb.ControlRequest) -> Any:
    call = served.stub.Control(iter([request]))
    reply = as_json(await call.read())
    call.cancel()  # a watch keeps the call open
    return reply


async def ws_reply(client: Client, request: svc_pb.ControlRequest, pushed: list[Any]) -> Any:
    await client.send({"id": "ctl", "message": as_json(request)})
    while "requestId" not in (reply := await client.message("ctl")):
        pushed.append(reply)
    assert reply["requestId"] == request.request_id
    return reply


def same_but(ws: Any, grpc: Any, ws_id: str = "job-ws", grpc_id: str = "job-grpc") -> None:
    assert masked(renamed(ws, ws_id, "<id>")) == masked(renamed(grpc, grpc_id, "<id>"))


async def test_control_replies_and_owner_events_as_over_grpc(
    served: Served, client: Client
) -> None:
    """The same commands on two held generations, one steered over each path."""
    owner = served.stub.Generate(iter([start(model="held-model", stream_id="job-grpc")]))
    grpc_owned = await read_json(owner, 2)
    await client.open("g", "Generate", start(model="held-model", stream_id="job-ws"))
    ws_owned = [await client.message("g") for _ in range(2)]
    await client.open("ctl", "Control")
    pushed: list[Any] = []
    steps = [
        ("s", "status", {}),
        ("p", "pause", {"reason": "ops"}),
        ("again", "pause", {}),
        ("r", "resume", {}),
        ("w", "watch", {}),
        ("c", "cancel", {"reason": "enough"}),
    ]
    replies = []
    for request_id, name, fields in steps:
        ws = await ws_reply(client, command(request_id, name, "job-ws", **fields), pushed)
        grpc = await grpc_reply(served, command(request_id, name, "job-grpc", **fields))
        same_but(ws, grpc)
        replies.append(ws)
    for request in [command("x", "status", "nope"), control_request("l", list={})]:
        # The same streams over both paths: equal, timings included.
        assert await ws_reply(client, request, pushed) == await grpc_reply(served, request)
    await client.send({"id": "ctl", "message": as_json(control_request("u", unwatch={}))})
    await client.send({"id": "ctl", "end": True})
    rest, status = await client.rest("ctl")

    assert status == {"code": 0}
    assert [r["requestId"] for r in rest] == ["u"]
    assert replies[1]["status"]["state"] == "STREAM_STATE_PAUSED"
    assert replies[2]["error"]["code"] == 9  # FAILED_PRECONDITION: already paused
    assert [push["status"]["state"] for push in pushed] == ["STREAM_STATE_CANCELLED"]
    assert masked(pushed[0]) == masked({"status": replies[-1]["status"]})
    ws_rest, ws_status = await client.rest("g")
    grpc_rest = await read_json(owner)
    assert ws_status == {"code": 0}
    same_but(ws_owned + ws_rest, grpc_owned + grpc_rest)
    assert [kind(event) for event in events(ws_rest)] == ["paused", "resumed", "completed"]
    assert ws_rest[-1]["event"]["completed"]["cancelledBy"] == "CANCELLED_BY_OPERATOR"


async def test_subscribe_replays_then_goes_live_as_over_grpc(
    served: Served, client: Client, held: HeldBackend
) -> None:
    owner = served.stub.Generate(iter([start(model="held-model", stream_id="job")]))
    await read_json(owner, 1)
    job = generation(served, "job")
    await eventually(lambda: job.log.next_offset == 2)  # started and the first word
    add = svc_pb.SubscribeRequest(add={"stream_id": "job", "from_offset": 0})
    await client.open("sub", "Subscribe", add, end=True)
    watcher = served.stub.Subscribe(iter([add]))
    ws_replayed = [await client.message("sub") for _ in range(3)]
    grpc_replayed = await read_json(watcher, 3)

    held.release.set()
    ws_live, status = await client.rest("sub")
    grpc_live = await read_json(watcher)
    owned = await read_json(owner)

    assert status == {"code": 0}
    assert ws_replayed == grpc_replayed
    assert ws_live == grpc_live
    assert ws_replayed[0] == {"added": {"streamId": "job", "state": "STREAM_STATE_RUNNING"}}
    assert ws_live[-1] == {
        "ended": {"streamId": "job", "nextOffset": str(len(HELD_ANSWER.split()) + 2)}
    }
    seen = [item["event"] for item in ws_replayed[1:] + ws_live[:-1]]
    assert [int(event.get("offset", 0)) for event in seen] == list(range(len(seen)))
    assert joined([{"event": event} for event in seen]) == HELD_ANSWER
    assert [response["event"] for response in owned] == seen[1:]


async def test_lookups_answer_as_over_grpc(
    served: Served, client: Client, held: HeldBackend
) -> None:
    await client.call("done", "Generate", start(stream_id="done"))
    owner = served.stub.Generate(iter([start(model="held-model", stream_id="running")]))
    await read_json(owner, 2)  # started, and the first word: it now waits for the rest
    first_page = await served.stub.ListStreams(svc_pb.ListStreamsRequest(page_size=1))
    requests: list[tuple[str, Any]] = [
        ("ListModels", svc_pb.ListModelsRequest()),
        ("ListStreams", svc_pb.ListStreamsRequest()),
        ("ListStreams", svc_pb.ListStreamsRequest(page_size=1)),
        ("ListStreams", svc_pb.ListStreamsRequest(page_token=first_page.next_page_token)),
        ("ListStreams", svc_pb.ListStreamsRequest(states=["STREAM_STATE_RUNNING"])),
        ("GetStream", svc_pb.GetStreamRequest(stream_id="done", recent_events=3)),
        ("GetStream", svc_pb.GetStreamRequest(stream_id="running")),
        ("GetStats", svc_pb.GetStatsRequest()),
        ("GetStats", svc_pb.GetStatsRequest(model="fake-model")),
    ]
    for method, request in requests:
        ws = await client.unary(method, request)
        grpc = as_json(await getattr(served.stub, method)(request))
        if method == "GetStats":  # when each report was made
            del ws["generatedAt"], grpc["generatedAt"]
        assert ws == grpc, method

    models = await client.unary("ListModels", {})
    assert [t["inFlight"] for t in models["routes"][1]["targets"]] == [1]
    assert [s["streamId"] for s in (await client.unary("ListStreams", {}))["streams"]] == [
        "running", "done"
    ]  # fmt: skip
    held.release.set()
    await read_json(owner)


async def test_a_unary_call_runs_on_its_one_message_without_an_end(client: Client) -> None:
    await client.open("u", "ListModels", {})
    messages, status = await client.rest("u")

    assert status == {"code": 0}
    assert [route["name"] for route in messages[0]["routes"]] == ["fake-model", "held-model"]


async def test_the_trace_context_in_metadata_reaches_the_backend_as_over_grpc(
    served: Served, client: Client
) -> None:
    trace = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    await client.open("g", "Generate", start(), end=True, metadata=trace)
    _, status = await client.rest("g")
    await read_json(served.stub.Generate(iter([start()]), metadata=tuple(trace.items())))

    ws_request, grpc_request = served.backend("fake").requests
    assert status == {"code": 0}
    assert ws_request.trace_headers == grpc_request.trace_headers == tuple(trace.items())
