"""Backpressure, pause and continuation against an HTTP upstream on a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.auth.principal import OPEN
from tests.backends.upstream import SSEUpstream
from tests.helpers import (
    Served,
    eventually,
    loopback_config,
    read_events,
    serving,
    stable,
    start,
    text,
)

TOKENS = 20000
WINDOW_EVENTS = 8


async def _serving(upstream: SSEUpstream, release_after: float) -> AsyncIterator[Served]:
    base_url = await upstream.start()
    config = loopback_config(
        backends={"up": {"kind": "openai", "base_url": base_url, "api_key_env": None}},
        routes={"up-model": {"targets": [{"backend": "up", "model": "m"}]}},
        default_route="up-model",
        streams={
            "window_events": WINDOW_EVENTS,
            "window_bytes": 4096,
            "release_after_seconds": release_after,
        },
        limits={"max_tokens_cap": TOKENS},
    )
    async with serving(config) as served:
        yield served
    await upstream.stop()


@pytest.fixture
def upstream() -> SSEUpstream:
    return SSEUpstream(TOKENS)


@pytest.fixture
async def served(upstream: SSEUpstream) -> AsyncIterator[Served]:
    async for served in _serving(upstream, release_after=60):
        yield served


async def test_a_consumer_without_credits_stops_the_upstream_through_tcp(
    served: Served, upstream: SSEUpstream
) -> None:
    call = served.stub.Generate()
    credit = {"mode": "FLOW_MODE_CREDIT", "initial_credits": 1}
    await call.write(start(flow=credit, sampling={"max_tokens": TOKENS}))
    first = await read_events(call, limit=1)
    generation = served.server.generations.registry.get(OPEN, first[0].stream_id)

    pulled = await stable(lambda: generation.tally.usage.completion_tokens)
    pushed = await stable(lambda: upstream.sent)

    # We read at most the window from the socket; the upstream could write only
    # what the socket buffers hold before TCP made it wait.
    assert pulled <= WINDOW_EVENTS + 1
    assert pushed < TOKENS
    await call.write(svc_pb.GenerateRequest(grant={"credits": TOKENS + 2}))
    await call.done_writing()
    events = first + await read_events(call)
    assert text(events) == "".join(f" t{i}" for i in range(TOKENS))
    assert upstream.sent == TOKENS


async def test_a_long_pause_closes_the_connection_and_resume_continues_the_text(
    upstream: SSEUpstream,
) -> None:
    upstream.tokens = 50
    upstream.delay = 0.02  # still writing when the pause releases the connection
    async for served in _serving(upstream, release_after=0.2):
        call = served.stub.Generate()
        await call.write(start(sampling={"max_tokens": 50}))
        events = await read_events(call, limit=5)
        await call.write(svc_pb.GenerateRequest(pause={}))
        await eventually(lambda: upstream.closed == 1)
        await call.write(svc_pb.GenerateRequest(resume={}))
        await call.done_writing()
        events += await read_events(call)

    assert len(upstream.bodies) == 2
    continuation = upstream.bodies[1]["messages"][-1]  # type: ignore[index]
    before_resume = text(events[: [e.WhichOneof("kind") for e in events].index("resumed")])
    assert continuation == {"role": "assistant", "content": before_resume}
    assert text(events) == "".join(f" t{i}" for i in range(50))
    assert [e.offset for e in events] == list(range(len(events)))
    assert events[-1].completed.usage.completion_tokens == 50
