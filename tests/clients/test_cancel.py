"""Cancel through the Python client: one terminal event, whoever cancels.

A generation under CREDIT flow whose caller took its 3 events and has no
credits left keeps running a few events ahead (the server's window is 4).
Cancelled by its caller or by an operator, the caller's iteration ends
normally within a second with one ``completed`` event (CANCELLED, who, why),
skipping the events it had no credit for; a subscriber out of credits gets
the same event and its subscription ends normally.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from llmrouter import Client, Generation, RouterError
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import operations_pb2 as ops_pb

from tests.clients.helpers import credit, events_of, rest, take

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

LONG_PROMPT = "Write a long story about a lighthouse keeper who talks to the sea every night."
CALLER, OPERATOR = ev_pb.CANCELLED_BY_CALLER, ev_pb.CANCELLED_BY_OPERATOR
ENDS_WITHIN = 1.0
"""Seconds a cancelled call may take to end, out of credits or not."""


async def held(client: Client) -> tuple[Generation, AsyncIterator[ev_pb.StreamEvent]]:
    """A long generation whose caller took its 3 credits and that produced past them."""
    generation = client.generate(LONG_PROMPT, sampling={"max_tokens": 200}, flow=credit(3))
    events = aiter(generation)
    assert [event.offset for event in await take(events, 3)] == [0, 1, 2]
    async with asyncio.timeout(30):
        while (await client.get_stream(generation.stream_id)).status.next_offset < 5:  # noqa: ASYNC110 - polls the server under test
            await asyncio.sleep(0.01)
    return generation, events


async def cancel(
    client: Client, generation: Generation, by: ev_pb.CancelledBy, reason: str
) -> None:
    """Cancels ``generation`` as its caller, or as an operator through Control."""
    if by == CALLER:
        await generation.cancel(reason)
        return
    async with client.control() as control:
        status = await control.cancel(generation.stream_id, reason)
    assert status.state == ops_pb.STREAM_STATE_CANCELLED


@pytest.mark.parametrize("by", [CALLER, OPERATOR], ids=["caller", "operator"])
async def test_a_cancel_ends_the_callers_call_at_once_with_no_credits_left(
    client: Client, by: ev_pb.CancelledBy
) -> None:
    generation, events = await held(client)

    await cancel(client, generation, by, "seen enough")
    async with asyncio.timeout(ENDS_WITHIN):
        [end] = await rest(events)

    assert end.offset >= 5, "the completed event waited for credits"
    completed = end.completed
    assert completed.finish_reason == ev_pb.FINISH_REASON_CANCELLED
    assert (completed.cancelled_by, completed.cancel_reason) == (by, "seen enough")
    assert completed.usage.prompt_tokens > 0
    result = await generation.result()
    assert (result.cancelled_by, result.cancel_reason) == (by, "seen enough")
    assert result.completed == completed


@pytest.mark.parametrize("by", [CALLER, OPERATOR], ids=["caller", "operator"])
async def test_a_subscriber_out_of_credits_gets_the_same_terminal_event(
    client: Client, by: ev_pb.CancelledBy
) -> None:
    generation, events = await held(client)
    async with client.subscribe() as subscription:
        await subscription.add(generation.stream_id, flow=credit(3))
        await subscription.close_send()
        items = aiter(subscription)
        seen = await take(items, 4)

        await cancel(client, generation, by, "seen enough")
        async with asyncio.timeout(ENDS_WITHIN):
            [end] = await rest(events)
            followed = await rest(items)

    assert seen[0].added.stream_id == generation.stream_id
    assert [event.offset for event in events_of(seen)] == [0, 1, 2]
    assert [item.WhichOneof("item") for item in followed] == ["event", "ended"]
    assert followed[0].event == end
    assert end.completed.cancelled_by == by
    ended = followed[1].ended
    assert ended.next_offset == end.offset + 1
    assert RouterError.from_ended(ended) is None


async def test_steering_sent_as_an_operator_cancels_does_not_fail_the_call(
    client: Client,
) -> None:
    generation, events = await held(client)

    await cancel(client, generation, OPERATOR, "seen enough")
    # The caller has not read the completed event yet: these race the call's end.
    await generation.grant(1000)
    await generation.pause("too late")
    async with asyncio.timeout(ENDS_WITHIN):
        [end] = await rest(events)

    assert (end.completed.cancelled_by, end.completed.cancel_reason) == (OPERATOR, "seen enough")
