"""Reconnecting against ``llmrouter serve`` through a proxy that drops every connection.

The client must come back by itself and deliver each event exactly once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from llmrouter import Client, Reconnect

from tests.backends.upstream import Proxy
from tests.clients.helpers import (
    credit,
    events_of,
    greedy,
    offsets,
    reference_text,
    rest,
    take,
    until,
)
from tests.helpers import PROMPT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

RECONNECT = Reconnect(max_attempts=5, backoff=0.05)


@pytest.fixture
async def proxy(address: str) -> AsyncIterator[Proxy]:
    """A loopback TCP proxy in front of the server."""
    proxy = Proxy(int(address.rsplit(":", 1)[1]))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


async def test_a_generation_reattaches_after_the_connection_drops(
    client: Client, proxy: Proxy
) -> None:
    want = await reference_text(client, 32)
    async with Client(f"127.0.0.1:{proxy.port}", reconnect=RECONNECT) as through:
        # Two credits hold the generation a few events ahead until it is
        # paused, so it is surely mid-stream when the connection drops; the
        # credits left carry over to the re-attached call.
        generation = through.generate(PROMPT, sampling=greedy(32), flow=credit(2))
        events_iter = aiter(generation)
        events = await take(events_iter, 2)
        await generation.pause("about to drop")
        await generation.grant(1000)
        events += await until(events_iter, "paused")

        proxy.drop()
        async with client.control() as control:
            await control.resume(generation.stream_id)
        events += await rest(events_iter)

    assert offsets(events) == list(range(len(events)))
    assert generation.text == want
    assert generation.completed is not None
    assert generation.completed.usage.completion_tokens == 32
    assert proxy.connections >= 2


async def test_a_subscription_resubscribes_after_the_connection_drops(
    client: Client, proxy: Proxy
) -> None:
    owner = client.generate(PROMPT, sampling=greedy(16), flow=credit(1))
    owner_events = aiter(owner)
    started = await anext(owner_events)
    async with (
        Client(f"127.0.0.1:{proxy.port}", reconnect=RECONNECT) as through,
        through.subscribe() as subscription,
    ):
        await subscription.add(started.stream_id)
        await subscription.close_send()
        items_iter = aiter(subscription)
        items = await take(items_iter, 3)

        proxy.drop()
        await owner.grant(1000)
        from_owner = [started, *await rest(owner_events)]
        items += await rest(items_iter)

    assert [item.WhichOneof("item") for item in items] == [
        "added",
        *["event"] * len(from_owner),
        "ended",
    ]
    assert events_of(items) == from_owner
    assert proxy.connections >= 2
