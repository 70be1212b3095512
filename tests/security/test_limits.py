"""Server-wide request limits, the retention budget, and how long a subscriber may hold.

Regressions of three probe findings: requests carrying megabytes of labels
(kept, and not counted, until a ListStreams reply outgrew every client's
message limit); finished generations whose labels the retention budget did
not count; a BLOCK subscriber granting no credits holding the owner's
producer for as long as it liked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.auth.principal import OPEN
from llmrouter_server.backends.scripted import ScriptedBackend, words
from tests.helpers import (
    Served,
    error_info,
    generate,
    kinds,
    read_events,
    scripted_config,
    serving,
    start,
    text,
)
from tests.security.scripted import ANSWER, HeldBackend, backends, config

pytestmark = pytest.mark.timeout(60)

HELD = " ".join(f"w{index}" for index in range(40))
"""What ``held-model`` answers in the tests that hold it: its first word at once,
the rest once released."""


@pytest.fixture
def held() -> HeldBackend:
    return HeldBackend(HELD)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    limits = {"max_messages": 2, "max_schema_bytes": 100}
    async with serving(config(limits=limits), backends()) as served:
        yield served


async def refused(served: Served, request: svc_pb.GenerateRequest) -> grpc.aio.AioRpcError:
    """The error of a Generate call that must fail."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await generate(served.stub, request)
    return caught.value


async def test_megabytes_of_labels_are_refused_and_nothing_is_kept(served: Served) -> None:
    one_large = {"big": "x" * 3_500_000}
    many = {f"k{index:04}": "y" * 3_500 for index in range(1000)}

    errors = await asyncio.gather(
        *(refused(served, start(labels=labels)) for labels in [one_large, many] * 3)
    )

    assert {error.code() for error in errors} == {grpc.StatusCode.INVALID_ARGUMENT}
    assert {error_info(error).metadata["field"] for error in errors} == {"start.labels"}
    assert [error.details() for error in errors[:2]] == [
        "start.labels: the value of key 'big' is 3500000 bytes; the limit is 256",
        "start.labels: 1000 labels; the limit is 16",
    ]
    listed = await served.stub.ListStreams(svc_pb.ListStreamsRequest())
    assert list(listed.streams) == []
    assert served.server.generations.registry.retained_bytes == 0


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({f"k{i}": "v" for i in range(17)}, "start.labels: 17 labels; the limit is 16"),
        ({"": "v"}, "start.labels: a label key must not be empty"),
        (
            {"k" * 64: "v"},
            "start.labels: key 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk'... is 64 bytes; the limit is 63",
        ),
        ({"é" * 32: "v"}, f"start.labels: key {'é' * 32!r} is 64 bytes; the limit is 63"),
        ({"env": "v" * 257}, "start.labels: the value of key 'env' is 257 bytes; the limit is 256"),
    ],
    ids=["too many", "empty key", "long key", "multibyte key", "long value"],
)
async def test_labels_beyond_the_limits_are_invalid_argument_naming_start_labels(
    served: Served, labels: dict[str, str], message: str
) -> None:
    error = await refused(served, start(labels=labels))

    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)
    assert error_info(error).metadata["field"] == "start.labels"


async def test_labels_within_the_limits_are_kept(served: Served) -> None:
    labels = {f"k{index:02}" + "k" * 59: "v" * 256 for index in range(16)}

    events = await generate(served.stub, start(labels=labels))

    reply = await served.stub.GetStream(svc_pb.GetStreamRequest(stream_id=events[0].stream_id))
    assert dict(reply.status.labels) == labels
    assert text(events) == ANSWER


async def test_more_messages_than_the_limit_are_invalid_argument(served: Served) -> None:
    messages = [gen_pb.ChatMessage(role=gen_pb.CHAT_ROLE_USER, content="hi")] * 3
    request = svc_pb.GenerateRequest(start=gen_pb.StartGeneration(messages=messages))

    error = await refused(served, request)

    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "start.messages: 3 messages; the limit is 2",
    )
    assert error_info(error).metadata["field"] == "start.messages"


async def test_a_schema_larger_than_the_configured_limit_is_invalid_argument(
    served: Served,
) -> None:
    schema = json.dumps({"type": "object", "description": "x" * 80})
    request = start(response_format={"format": gen_pb.OUTPUT_FORMAT_JSON, "json_schema": schema})

    error = await refused(served, request)

    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        f"start.response_format.json_schema: is {len(schema)} bytes; the limit is 100",
    )


async def test_retained_generations_count_their_labels_and_stay_within_the_budget() -> None:
    budget = 100_000
    labels = {f"k{index:02}" + "k" * 59: "v" * 256 for index in range(16)}  # 5 KiB each
    async with serving(config(streams={"retain_total_bytes": budget}), backends()) as served:
        for index in range(100):
            events = await generate(served.stub, start(stream_id=f"job-{index:03}", labels=labels))
            assert text(events) == ANSWER
        registry = served.server.generations.registry
        each = registry.get(OPEN, "job-099").retained_bytes
        listed = await served.stub.ListStreams(svc_pb.ListStreamsRequest())
        accounted = registry.retained_bytes
        with pytest.raises(grpc.aio.AioRpcError) as oldest:
            await served.stub.GetStream(svc_pb.GetStreamRequest(stream_id="job-000"))

    kept = budget // each
    assert each > sum(len(key) + len(value) for key, value in labels.items())
    assert [status.stream_id for status in listed.streams] == [
        f"job-{index:03}" for index in reversed(range(100 - kept, 100))
    ]
    assert accounted == kept * each <= budget
    assert oldest.value.code() == grpc.StatusCode.NOT_FOUND


def holding_subscriber(served: Served, stream_id: str) -> Any:
    """A Subscribe call on ``stream_id``, BLOCK in CREDIT flow with no credits: it holds
    the producer from the start."""
    add = ops_pb.AddSubscription(
        stream_id=stream_id,
        slow_policy=ops_pb.SLOW_SUBSCRIBER_POLICY_BLOCK,
        flow=gen_pb.FlowControl(mode=gen_pb.FLOW_MODE_CREDIT, initial_credits=0),
    )
    return served.stub.Subscribe(iter([svc_pb.SubscribeRequest(add=add)]))


async def test_a_block_subscriber_holding_the_producer_is_disconnected_and_the_owner_goes_on(
    held: HeldBackend,
) -> None:
    settings = config(limits={"max_hold_seconds": 0.5}, streams={"window_events": 4})
    async with serving(settings, backends(held)) as served:
        owner = served.stub.Generate(iter([start(model="held-model")]))
        first = await read_events(owner, limit=2)
        stream_id = first[0].stream_id
        holder = holding_subscriber(served, stream_id)
        added = await holder.read()
        held.release.set()

        ended = await holder.read()
        rest = await read_events(owner)

    assert added.added.stream_id == stream_id
    assert ended.ended.stream_id == stream_id
    assert ended.ended.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert "limits.max_hold_seconds (0.5 s)" in ended.ended.error.message
    assert kinds(first + rest) == ["started", *["chunk"] * 40, "completed"]
    assert text(first + rest) == HELD


async def test_the_owners_own_cursor_is_not_held_to_max_hold(held: HeldBackend) -> None:
    settings = config(limits={"max_hold_seconds": 0.3}, streams={"window_events": 4})
    async with serving(settings, backends(held)) as served:
        owner = served.stub.Generate()
        flow = gen_pb.FlowControl(mode=gen_pb.FLOW_MODE_CREDIT, initial_credits=2)
        await owner.write(start(model="held-model", flow=flow))
        first = await read_events(owner, limit=2)
        stream_id = first[0].stream_id
        holder = holding_subscriber(served, stream_id)
        await holder.read()
        held.release.set()

        ended = await holder.read()  # both held the producer: only the subscriber is ended
        generation = served.server.generations.registry.get(OPEN, stream_id)
        still_attached = (generation.consumers, generation.state.value)
        await owner.write(svc_pb.GenerateRequest(grant=gen_pb.GrantCredits(credits=100)))
        await owner.done_writing()
        rest = await read_events(owner)

    assert ended.ended.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert still_attached == (1, "running")
    assert text(first + rest) == HELD


async def test_calls_past_max_calls_per_connection_wait_for_a_free_stream() -> None:
    long_answer = words(" ".join(["w"] * 200), delay=0.02)
    settings = scripted_config("fake", limits={"max_calls_per_connection": 2})
    async with serving(settings, {"fake": ScriptedBackend("fake", long_answer)}) as served:
        calls = [
            served.stub.Generate(iter([start(sampling={"max_tokens": 200})])) for _ in range(3)
        ]
        firsts = [asyncio.ensure_future(read_events(call, limit=1)) for call in calls]
        # The signal the third call would give: its first event, within a bound.
        await asyncio.wait(firsts, timeout=2)
        assert sorted(first.done() for first in firsts) == [False, True, True]
        assert len(served.server.generations.registry.running()) == 2

        waiting = next(index for index, first in enumerate(firsts) if not first.done())
        calls[(waiting + 1) % 3].cancel()  # a stream of the connection is free again
        events = await asyncio.wait_for(firsts[waiting], timeout=5)
        assert events[0].WhichOneof("kind") == "started"
        for call in calls:
            call.cancel()
