"""Subscribe: replay then live, slow-subscriber policies, credits, errors, detach."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc
import pytest
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.auth.principal import OPEN
from llmrouter_server.backends.scripted import ScriptedBackend, Step
from tests.helpers import (
    TIGHT_CHANNEL,
    Served,
    eventually,
    generate,
    read_events,
    scripted_config,
    serving,
    stable,
    start,
    stub_for,
    text,
)

TOKENS = 3000
CONFIG = scripted_config(
    "fake",
    streams={"window_events": 8, "window_bytes": 4096},
    limits={"max_tokens_cap": TOKENS, "max_subscriptions_per_call": 3},
)


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend("fake", [Step(f" w{i}") for i in range(TOKENS)])


@pytest.fixture
async def served(backend: ScriptedBackend) -> AsyncIterator[Served]:
    async with serving(CONFIG, {"fake": backend}) as served:
        yield served


class Subscriber:
    """One Subscribe call driven by a queue of requests."""

    def __init__(self, stub: Any) -> None:
        self.requests: asyncio.Queue[svc_pb.SubscribeRequest | None] = asyncio.Queue()
        self.call = stub.Subscribe(self._requests())

    async def add(self, stream_id: str, offset: int = 0, **fields: Any) -> None:
        add = ops_pb.AddSubscription(stream_id=stream_id, from_offset=offset, **fields)
        await self.requests.put(svc_pb.SubscribeRequest(add=add))

    async def send(self, **action: Any) -> None:
        await self.requests.put(svc_pb.SubscribeRequest(**action))

    async def read(self, count: int | None = None) -> list[Any]:
        items = []
        while count is None or len(items) < count:
            item = await self.call.read()
            if item is grpc.aio.EOF:
                break
            items.append(item)
        return items

    async def close(self) -> None:
        await self.requests.put(None)

    async def _requests(self) -> AsyncIterator[svc_pb.SubscribeRequest]:
        while (request := await self.requests.get()) is not None:
            yield request


def _events(items: list[Any]) -> list[Any]:
    return [item.event for item in items if item.HasField("event")]


async def _start(served: Served, **fields: Any) -> tuple[Any, str]:
    fields.setdefault("sampling", {"max_tokens": TOKENS})
    call = served.stub.Generate(iter([start(**fields)]))
    first = await read_events(call, limit=1)
    return call, first[0].stream_id


async def test_replay_after_completion_equals_the_live_events_byte_for_byte(
    served: Served,
) -> None:
    live = await generate(served.stub, start(sampling={"max_tokens": 50}))
    subscriber = Subscriber(served.stub)
    await subscriber.add(live[0].stream_id)
    await subscriber.close()

    items = await subscriber.read()

    assert items[0].added.state == ops_pb.STREAM_STATE_COMPLETED
    replayed = _events(items)
    assert [e.SerializeToString() for e in replayed] == [e.SerializeToString() for e in live]
    assert items[-1].ended.next_offset == len(live)
    assert not items[-1].ended.HasField("error")


async def test_a_slow_skip_subscriber_never_slows_the_fast_ones(served: Served) -> None:
    call, stream_id = await _start(served)
    slow_channel, slow_stub = stub_for(served, TIGHT_CHANNEL)
    slow = Subscriber(slow_stub)
    await slow.add(stream_id, slow_policy=ops_pb.SLOW_SUBSCRIBER_POLICY_SKIP)
    await slow.read(1)  # added; then this subscriber stops reading
    fast = Subscriber(served.stub)
    await fast.add(stream_id)
    await fast.close()

    fast_events = _events(await fast.read())
    owner_events = await read_events(call)
    generation = served.server.generations.registry.get(OPEN, stream_id)
    assert generation.state.value == "completed"  # while the slow one has read nothing
    await slow.close()
    slow_items = await slow.read()
    await slow_channel.close()

    assert fast_events[-1].HasField("completed")
    assert text(fast_events) == text(owner_events) == "".join(f" w{i}" for i in range(TOKENS))
    slow_events = _events(slow_items)
    gaps = [e for e in slow_events if e.HasField("gap")]
    assert gaps
    assert gaps[0].gap.from_offset <= gaps[0].gap.to_offset == gaps[0].offset
    assert [e.offset for e in slow_events] == sorted({e.offset for e in slow_events})
    assert slow_events[-1].HasField("completed")
    assert slow_items[-1].ended.next_offset == TOKENS + 2


async def test_a_slow_block_subscriber_holds_the_producer_and_loses_nothing(
    served: Served, backend: ScriptedBackend
) -> None:
    call, stream_id = await _start(served)
    slow_channel, slow_stub = stub_for(served, TIGHT_CHANNEL)
    slow = Subscriber(slow_stub)
    await slow.add(stream_id)
    await slow.read(1)
    owner = asyncio.ensure_future(read_events(call))

    held = await stable(lambda: backend.emitted)
    assert held < TOKENS
    await slow.close()
    slow_events = _events(await slow.read())
    await slow_channel.close()

    assert [e.offset for e in slow_events] == list(range(TOKENS + 2))
    assert text(slow_events) == text(await owner)


async def test_a_slow_disconnect_subscriber_is_dropped_with_resource_exhausted(
    served: Served,
) -> None:
    call, stream_id = await _start(served)
    slow_channel, slow_stub = stub_for(served, TIGHT_CHANNEL)
    slow = Subscriber(slow_stub)
    await slow.add(stream_id, slow_policy=ops_pb.SLOW_SUBSCRIBER_POLICY_DISCONNECT)
    await read_events(call)
    await slow.close()

    items = await slow.read()
    await slow_channel.close()

    assert items[-1].ended.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert "fell more than its window behind" in items[-1].ended.error.message


async def test_credits_per_subscription(served: Served) -> None:
    _, stream_id = await _start(served, sampling={"max_tokens": 20})
    subscriber = Subscriber(served.stub)
    await subscriber.add(stream_id, flow={"mode": "FLOW_MODE_CREDIT", "initial_credits": 2})
    first = await subscriber.read(3)
    nothing = asyncio.ensure_future(subscriber.call.read())
    await asyncio.sleep(0.3)
    assert not nothing.done()

    await subscriber.send(grant={"stream_id": stream_id, "credits": 3})
    more = [await nothing, *await subscriber.read(2)]
    await subscriber.send(grant={"stream_id": stream_id, "credits": 0})
    ended = await subscriber.read(1)

    assert [e.offset for e in _events(first)] == [0, 1]
    assert [e.offset for e in _events(more)] == [2, 3, 4]
    assert ended[0].ended.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    await subscriber.close()


async def test_bad_subscriptions_end_alone_and_the_call_goes_on(served: Served) -> None:
    done = await generate(served.stub, start(sampling={"max_tokens": 5}))
    stream_id = done[0].stream_id
    subscriber = Subscriber(served.stub)

    await subscriber.add("no-such-stream")
    await subscriber.add(stream_id, offset=99)
    await subscriber.send(remove={"stream_id": "not-subscribed"})
    await subscriber.add(stream_id, offset=2)
    await subscriber.close()
    items = await subscriber.read()

    errors = [(i.ended.stream_id, i.ended.error.code) for i in items[:3]]
    assert errors == [
        ("no-such-stream", grpc.StatusCode.NOT_FOUND.value[0]),
        (stream_id, grpc.StatusCode.OUT_OF_RANGE.value[0]),
        ("not-subscribed", grpc.StatusCode.NOT_FOUND.value[0]),
    ]
    assert "earliest available offset is 0 and the next is 7" in items[1].ended.error.message
    assert [e.offset for e in _events(items[3:])] == [2, 3, 4, 5, 6]


async def test_too_many_subscriptions_on_one_call(served: Served) -> None:
    ids = [
        (await generate(served.stub, start(sampling={"max_tokens": 1})))[0].stream_id
        for _ in range(4)
    ]
    subscriber = Subscriber(served.stub)
    for stream_id in ids:
        await subscriber.add(stream_id, flow={"mode": "FLOW_MODE_CREDIT"})
    items = await subscriber.read(4)

    assert [i.WhichOneof("item") for i in items] == ["added", "added", "added", "ended"]
    assert items[3].ended.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert items[3].ended.error.message == "at most 3 subscriptions per Subscribe call"
    for stream_id in ids[:3]:
        await subscriber.send(remove={"stream_id": stream_id})
    await subscriber.close()
    rest = await subscriber.read()
    assert [i.ended.stream_id for i in rest if i.HasField("ended")] == ids[:3]


async def test_detached_generation_continues_and_reattaching_loses_nothing(
    served: Served, backend: ScriptedBackend
) -> None:
    backend.script = [Step(f" d{i}", delay=0.01) for i in range(30)]
    detach = {"action": "DISCONNECT_ACTION_DETACH", "detach_ttl": timedelta(seconds=30)}
    call = served.stub.Generate(iter([start(on_disconnect=detach, sampling={"max_tokens": 30})]))
    seen = await read_events(call, limit=4)
    call.cancel()
    generation = served.server.generations.registry.get(OPEN, seen[0].stream_id)
    await eventually(lambda: generation.consumers == 0)
    assert generation.detached

    attach = {"stream_id": seen[0].stream_id, "from_offset": 4}
    rest = await generate(served.stub, svc_pb.GenerateRequest(attach=attach))
    replay = Subscriber(served.stub)
    await replay.add(seen[0].stream_id)
    await replay.close()
    everything = _events(await replay.read())

    assert rest[0].offset == 4
    assert [e.SerializeToString() for e in seen + rest] == [
        e.SerializeToString() for e in everything
    ]
    assert text(everything) == "".join(f" d{i}" for i in range(30))


async def test_attach_to_a_generation_with_a_caller_is_failed_precondition(
    served: Served,
) -> None:
    call, stream_id = await _start(served)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await generate(served.stub, svc_pb.GenerateRequest(attach={"stream_id": stream_id}))

    call.cancel()
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "is attached to another caller" in caught.value.details()


async def test_a_detached_generation_nobody_comes_back_for_is_cancelled(
    served: Served, backend: ScriptedBackend
) -> None:
    backend.script = [Step("a"), Step(stall=True)]
    detach = {"action": "DISCONNECT_ACTION_DETACH", "detach_ttl": timedelta(milliseconds=200)}
    call = served.stub.Generate(iter([start(on_disconnect=detach)]))
    stream_id = (await read_events(call, limit=2))[0].stream_id
    call.cancel()
    generation = served.server.generations.registry.get(OPEN, stream_id)

    await eventually(lambda: generation.state.value == "cancelled")

    completed = generation.log.recent(1)[0].kind
    assert (completed.finish_reason, completed.cancelled_by, completed.cancel_reason) == (
        "cancelled", "detach_timeout", "no consumer came back within the detach TTL"
    )  # fmt: skip
    assert generation.error is None
    assert backend.open_streams == 0
