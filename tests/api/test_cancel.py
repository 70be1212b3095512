"""Cancel is never held by flow control: one terminal event, whoever cancels.

A generation under CREDIT flow with no credits left has produced events its
caller has not taken. Whether the caller, an operator or a subscriber's
generation is cancelled, every consumer gets the same ``completed`` event
(CANCELLED, who, why) at once, skipping what it could not take; the skipped
events stay in the log for replay.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.auth.principal import OPEN
from llmrouter_server.backends.scripted import ScriptedBackend, words
from tests.helpers import (
    Served,
    cancel,
    control_request,
    eventually,
    kinds,
    loopback_config,
    read_events,
    serving,
    start,
)

pytestmark = pytest.mark.timeout(10)

CREDIT_3 = {"mode": "FLOW_MODE_CREDIT", "initial_credits": 3}
TEXT = " ".join(f"w{i}" for i in range(40))
CONFIG = loopback_config(
    backends={"fake": {"kind": "openai", "api_key_env": None}},
    routes={"m": {"targets": [{"backend": "fake", "model": "m"}]}},
    default_route="m",
    streams={"window_events": 8},
)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serving(CONFIG, {"fake": ScriptedBackend("fake", words(TEXT))}) as served:
        yield served


async def _held(served: Served, requests: asyncio.Queue[Any]) -> tuple[Any, list[Any], Any]:
    """A CREDIT call that took its 3 events and has more produced behind them."""
    call = served.stub.Generate(_drain(requests))
    await requests.put(start(flow=CREDIT_3, sampling={"max_tokens": 40}))
    taken = [(await call.read()).event for _ in range(3)]
    generation = served.server.generations.registry.get(OPEN, taken[0].stream_id)
    await eventually(lambda: generation.log.next_offset > 6)
    return call, taken, generation


async def test_the_callers_cancel_ends_its_call_at_once_with_no_credits_left(
    served: Served,
) -> None:
    requests: asyncio.Queue[Any] = asyncio.Queue()
    call, taken, generation = await _held(served, requests)

    await requests.put(cancel())
    rest = await read_events(call)
    await requests.put(None)

    assert kinds(taken + rest) == ["started", "chunk", "chunk", "completed"]
    completed = rest[0]
    assert completed.offset == generation.log.next_offset - 1 > 3
    assert completed.completed.finish_reason == ev_pb.FINISH_REASON_CANCELLED
    assert (completed.completed.cancelled_by, completed.completed.cancel_reason) == (
        ev_pb.CANCELLED_BY_CALLER, "test"
    )  # fmt: skip
    replay = await _replay(served, completed.stream_id)
    assert [e.offset for e in replay] == list(range(completed.offset + 1))
    assert replay[-1] == completed


async def test_an_operator_cancel_ends_the_callers_call_the_same_way(served: Served) -> None:
    requests: asyncio.Queue[Any] = asyncio.Queue()
    call, taken, _ = await _held(served, requests)

    control = served.stub.Control(
        iter([control_request("c", cancel={"stream_id": taken[0].stream_id, "reason": "ops"})])
    )
    replies = [reply async for reply in control]
    rest = await read_events(call)
    await requests.put(None)

    assert replies[0].status.state == ops_pb.STREAM_STATE_CANCELLED
    assert kinds(rest) == ["completed"]
    assert (rest[0].completed.cancelled_by, rest[0].completed.cancel_reason) == (
        ev_pb.CANCELLED_BY_OPERATOR, "ops"
    )  # fmt: skip


async def test_a_subscriber_out_of_credits_sees_the_same_terminal_event(served: Served) -> None:
    requests: asyncio.Queue[Any] = asyncio.Queue()
    call, taken, _ = await _held(served, requests)
    stream_id = taken[0].stream_id
    subscription = served.stub.Subscribe(
        iter([svc_pb.SubscribeRequest(add={"stream_id": stream_id, "flow": CREDIT_3})])
    )
    seen = [await _next_event(subscription) for _ in range(3)]

    await requests.put(cancel())
    owner = await read_events(call)
    watched = [await _next_event(subscription)]
    subscription.cancel()
    await requests.put(None)

    assert kinds(seen) == ["started", "chunk", "chunk"]
    assert watched == owner[-1:]
    assert watched[0].completed.cancelled_by == ev_pb.CANCELLED_BY_CALLER


async def _replay(served: Served, stream_id: str) -> list[Any]:
    subscription = served.stub.Subscribe(
        iter([svc_pb.SubscribeRequest(add={"stream_id": stream_id, "from_offset": 0})])
    )
    events = []
    async for response in subscription:
        if response.HasField("event"):
            events.append(response.event)
        if response.HasField("ended"):
            break
    subscription.cancel()
    return events


async def _next_event(subscription: Any) -> Any:
    while not (response := await subscription.read()).HasField("event"):
        pass
    return response.event


async def _drain(requests: asyncio.Queue[Any]) -> AsyncIterator[Any]:
    while (request := await requests.get()) is not None:
        yield request
