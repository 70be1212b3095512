"""Backpressure, credits, pause, resume and cancel on the real embedded model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.auth.principal import OPEN
from llmrouter_server.backends.embedded import EmbeddedBackend
from tests.helpers import (
    TIGHT_CHANNEL,
    Served,
    control_request,
    eventually,
    generate,
    kinds,
    loopback_config,
    read_events,
    serving,
    stable,
    start,
    stub_for,
    text,
)

WINDOW_EVENTS = 8
STORY = "Write a long story about a lighthouse keeper."


def _config(release_after: float) -> object:
    return loopback_config(
        streams={
            "window_events": WINDOW_EVENTS,
            "window_bytes": 4096,
            "release_after_seconds": release_after,
        },
        limits={"max_tokens_cap": 512},
    )


@pytest.fixture(scope="module")
async def served() -> AsyncIterator[Served]:
    async with serving(_config(release_after=60)) as served:  # type: ignore[arg-type]
        yield served


@pytest.fixture
def backend(served: Served) -> EmbeddedBackend:
    backend: EmbeddedBackend = served.backend("embedded")
    return backend


@pytest.fixture(autouse=True)
async def _idle_after(served: Served) -> AsyncIterator[None]:
    yield
    await eventually(lambda: not served.server.generations.registry.running())


async def _greedy_text(served: Served, max_tokens: int) -> str:
    request = start(STORY, sampling={"temperature": 0, "max_tokens": max_tokens})
    return text(await generate(served.stub, request))


async def test_stalled_reader_lets_the_model_decode_at_most_the_window(
    served: Served, backend: EmbeddedBackend
) -> None:
    expected = await _greedy_text(served, 200)
    channel, stub = stub_for(served, TIGHT_CHANNEL)
    before = backend.decode_steps
    call = stub.Generate(iter([start(STORY, sampling={"temperature": 0, "max_tokens": 200})]))
    first = await read_events(call, limit=1)

    decoded = await stable(lambda: backend.decode_steps) - before
    generation = served.server.generations.registry.get(OPEN, first[0].stream_id)

    # Our window, plus what a 1 KiB HTTP/2 window holds (events are >= 40 bytes
    # on the wire), plus the token in flight and the one decoded ahead.
    assert decoded <= WINDOW_EVENTS + 1024 // 40 + 2
    assert generation.tally.usage.completion_tokens == decoded - 1  # one decoded ahead
    assert generation.state.value == "running"
    events = first + await read_events(call)
    await channel.close()
    assert text(events) == expected
    assert events[-1].completed.usage.completion_tokens == 200


async def test_credit_flow_never_sends_past_the_grant(
    served: Served, backend: EmbeddedBackend
) -> None:
    call = served.stub.Generate()
    flow = {"mode": "FLOW_MODE_CREDIT", "initial_credits": 3}
    await call.write(start(STORY, flow=flow, sampling={"temperature": 0, "max_tokens": 100}))
    first = await read_events(call, limit=3)
    decoded = await stable(lambda: backend.decode_steps)
    nothing = asyncio.ensure_future(call.read())
    await asyncio.sleep(0.3)
    assert not nothing.done()
    assert decoded - backend.decode_steps == 0

    await call.write(svc_pb.GenerateRequest(grant={"credits": 2}))
    more = [await nothing, await call.read()]
    still_nothing = asyncio.ensure_future(call.read())
    await asyncio.sleep(0.3)

    assert [e.offset for e in first] == [0, 1, 2]
    assert [r.event.offset for r in more] == [3, 4]
    assert not still_nothing.done()
    generation = served.server.generations.registry.get(OPEN, first[0].stream_id)
    assert generation.tally.usage.completion_tokens <= 5 + WINDOW_EVENTS
    await call.write(svc_pb.GenerateRequest(grant={"credits": 1000}))
    await call.done_writing()
    rest = [(await still_nothing).event, *await read_events(call)]
    assert rest[-1].completed.usage.completion_tokens == 100
    assert [e.offset for e in first + [r.event for r in more] + rest] == list(range(len(rest) + 5))


async def test_pause_stops_decoding_and_resume_continues_without_lost_or_repeated_text(
    served: Served, backend: EmbeddedBackend
) -> None:
    expected = await _greedy_text(served, 60)
    call = served.stub.Generate()
    await call.write(start(STORY, sampling={"temperature": 0, "max_tokens": 60}))
    events = await read_events(call, limit=5)

    await call.write(svc_pb.GenerateRequest(pause={"reason": "user stepped away"}))
    paused_at = await stable(lambda: backend.decode_steps)
    await asyncio.sleep(0.3)
    assert backend.decode_steps == paused_at
    await call.write(svc_pb.GenerateRequest(resume={}))
    await call.done_writing()
    events += await read_events(call)

    assert "paused" in kinds(events)
    assert kinds(events).index("resumed") > kinds(events).index("paused")
    assert events[kinds(events).index("paused")].paused.reason == "user stepped away"
    assert [e.offset for e in events] == list(range(len(events)))
    assert text(events) == expected
    assert events[-1].completed.usage.completion_tokens == 60


async def test_operator_pauses_resumes_and_cancels_from_another_connection(
    served: Served, backend: EmbeddedBackend
) -> None:
    call = served.stub.Generate(iter([start(STORY, sampling={"max_tokens": 400})]))
    stream_id = (await read_events(call, limit=2))[0].stream_id
    channel, operator = stub_for(served, [])
    commands: asyncio.Queue[svc_pb.ControlRequest | None] = asyncio.Queue()
    replies = operator.Control(_requests(commands))

    await commands.put(control_request("p", pause={"stream_id": stream_id, "reason": "ops"}))
    paused = await replies.read()
    steps = await stable(lambda: backend.decode_steps)
    await commands.put(control_request("again", resume={"stream_id": stream_id}))
    resumed = await replies.read()
    await eventually(lambda: backend.decode_steps > steps)
    await commands.put(control_request("c", cancel={"stream_id": stream_id, "reason": "enough"}))
    cancelled = await replies.read()
    await commands.put(None)

    assert (paused.request_id, paused.status.state) == ("p", ops_pb.STREAM_STATE_PAUSED)
    assert resumed.status.state == ops_pb.STREAM_STATE_RUNNING
    assert cancelled.status.state == ops_pb.STREAM_STATE_CANCELLED
    completed = (await read_events(call))[-1].completed
    assert completed.finish_reason == ev_pb.FINISH_REASON_CANCELLED
    assert (completed.cancelled_by, completed.cancel_reason) == (
        ev_pb.CANCELLED_BY_OPERATOR, "enough"
    )  # fmt: skip
    await eventually(lambda: backend.busy == 0)
    steps = backend.decode_steps
    await asyncio.sleep(0.3)
    assert backend.decode_steps == steps
    await channel.close()


async def test_replay_of_a_finished_generation_equals_the_live_events(served: Served) -> None:
    live = await generate(served.stub, start(STORY, sampling={"temperature": 0, "max_tokens": 20}))
    add = {"stream_id": live[0].stream_id, "from_offset": 0}

    items = [item async for item in served.stub.Subscribe(iter([svc_pb.SubscribeRequest(add=add)]))]

    replayed = [item.event for item in items if item.HasField("event")]
    assert [e.SerializeToString() for e in replayed] == [e.SerializeToString() for e in live]
    assert text(replayed).strip()


async def test_resume_when_not_paused_is_rejected_in_band_and_the_call_goes_on(
    served: Served,
) -> None:
    call = served.stub.Generate()
    await call.write(start(STORY, sampling={"max_tokens": 200}))
    await read_events(call, limit=1)
    await call.write(svc_pb.GenerateRequest(resume={}))
    while not (response := await call.read()).HasField("rejected"):
        assert response.event.WhichOneof("kind") != "completed"
    await call.write(svc_pb.GenerateRequest(cancel={}))
    events = await read_events(call)

    assert response.rejected.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert "is not paused (it is running)" in response.rejected.message
    assert events[-1].completed.finish_reason == ev_pb.FINISH_REASON_CANCELLED


async def test_zero_credits_are_rejected_in_band_and_the_call_goes_on(served: Served) -> None:
    call = served.stub.Generate()
    flow = {"mode": "FLOW_MODE_CREDIT", "initial_credits": 1}
    await call.write(start(STORY, flow=flow, sampling={"max_tokens": 200}))
    await read_events(call, limit=1)
    await call.write(svc_pb.GenerateRequest(grant={"credits": 0}))
    rejected = (await call.read()).rejected  # no credit left: nothing else can come first
    await call.write(svc_pb.GenerateRequest(cancel={}))
    events = await read_events(call)

    assert rejected.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert rejected.message == "grant.credits: must be positive"
    assert events[-1].completed.finish_reason == ev_pb.FINISH_REASON_CANCELLED


async def test_a_paused_generation_gives_its_instance_back_and_continues_later() -> None:
    async with serving(_config(release_after=0.3)) as served:  # type: ignore[arg-type]
        backend: EmbeddedBackend = served.backend("embedded")
        expected = await _greedy_text(served, 48)
        call = served.stub.Generate()
        await call.write(start(STORY, sampling={"temperature": 0, "max_tokens": 48}))
        events = await read_events(call, limit=6)
        await call.write(svc_pb.GenerateRequest(pause={}))
        await eventually(lambda: backend.busy == 0)

        other = await generate(served.stub, start("Say hi.", sampling={"max_tokens": 4}))
        await call.write(svc_pb.GenerateRequest(resume={}))
        await call.done_writing()
        events += await read_events(call)

    assert other[-1].completed.usage.completion_tokens == 4
    assert [e.offset for e in events] == list(range(len(events)))
    assert text(events) == expected
    assert events[-1].completed.finish_reason == ev_pb.FINISH_REASON_LENGTH


async def _requests(
    queue: asyncio.Queue[svc_pb.ControlRequest | None],
) -> AsyncIterator[svc_pb.ControlRequest]:
    while (request := await queue.get()) is not None:
        yield request
