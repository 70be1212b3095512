"""The Python client's steering against ``llmrouter serve``: pause, credits, attach."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from llmrouter import Client, RouterError

from tests.clients.helpers import (
    collect,
    credit,
    greedy,
    offsets,
    reference_text,
    rest,
    take,
    until,
)
from tests.helpers import PROMPT, kinds

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


async def test_pause_and_resume_are_marked_in_the_stream_and_lose_nothing(
    client: Client,
) -> None:
    want = await reference_text(client, 32)
    # Two credits (started, then the first chunk) hold the generation a few
    # events ahead, so the pause surely arrives while it runs.
    generation = client.generate(PROMPT, sampling=greedy(32), flow=credit(2))
    events_iter = aiter(generation)
    events = await take(events_iter, 2)

    await generation.pause("stepped away")
    await generation.grant(1000)
    events += await until(events_iter, "paused")
    await generation.resume()
    events += await rest(events_iter)

    assert events[kinds(events).index("paused")].paused.reason == "stepped away"
    assert kinds(events).index("resumed") > kinds(events).index("paused")
    assert offsets(events) == list(range(len(events)))
    assert generation.text == want
    assert generation.completed is not None
    assert generation.completed.usage.completion_tokens == 32


async def test_credit_flow_never_sends_past_the_grant(client: Client) -> None:
    generation = client.generate(PROMPT, sampling=greedy(16), flow=credit(2))
    events_iter = aiter(generation)
    events = await take(events_iter, 2)
    # The server has produced more than it may send...
    while (await client.get_stream(generation.stream_id)).status.next_offset <= 3:  # noqa: ASYNC110 - polls the server under test
        await asyncio.sleep(0.01)
    # ... and sends none of it until the next grant.
    pending = asyncio.ensure_future(anext(events_iter))
    done, _ = await asyncio.wait({pending}, timeout=0.3)
    assert not done, "an event arrived with no credit left"

    await generation.grant(3)
    events += [await pending, *await take(events_iter, 2)]
    assert offsets(events) == [0, 1, 2, 3, 4]
    await generation.grant(1000)
    events += await rest(events_iter)

    assert offsets(events) == list(range(len(events)))
    assert events[-1].completed.usage.completion_tokens == 16


async def test_attach_replays_a_finished_generation_from_an_offset(client: Client) -> None:
    live = await collect(client.generate(PROMPT, sampling=greedy(8)))

    replayed = await collect(client.attach(live[0].stream_id, from_offset=3))

    assert replayed == live[3:]


async def test_attach_to_an_unknown_stream_raises_not_found(client: Client) -> None:
    with pytest.raises(RouterError) as raised:
        await client.attach("no-such-stream").result()

    assert raised.value.code == grpc.StatusCode.NOT_FOUND
    assert raised.value.reason == "NOT_FOUND"
    assert raised.value.stream_id == "no-such-stream"


async def test_a_steering_request_the_server_cannot_apply_is_reported_and_the_call_goes_on(
    client: Client,
) -> None:
    want = await reference_text(client, 8)
    generation = client.generate(PROMPT, sampling=greedy(8), flow=credit(2))
    events_iter = aiter(generation)
    events = await take(events_iter, 2)

    await generation.resume()  # not paused: refused, nothing changes
    await generation.grant(1000)
    events += await rest(events_iter)

    assert [(error.code, error.field) for error in generation.rejected] == [
        (grpc.StatusCode.FAILED_PRECONDITION, "")
    ]
    assert "not paused" in str(generation.rejected[0])
    assert offsets(events) == list(range(len(events)))
    assert generation.text == want
