"""The OpenAI-compatible backend against llama-cpp-python's server on a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import grpc
import pytest
from llmrouter.v1 import events_pb2 as ev_pb

from tests.backends.upstream import MODEL_ALIAS, Proxy, llama_cpp_server
from tests.helpers import (
    Served,
    cancel,
    generate,
    kinds,
    loopback_config,
    read_events,
    serving,
    start,
    text,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with llama_cpp_server() as base_url:
        yield base_url


@pytest.fixture
async def proxy(upstream: str) -> AsyncIterator[Proxy]:
    proxy = Proxy(urlsplit(upstream).port or 80)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def routed(proxy: Proxy) -> AsyncIterator[Served]:
    """A router whose default route is the OpenAI backend, through the proxy."""
    port = proxy.port
    config = loopback_config(
        backends={
            "local-openai": {
                "kind": "openai",
                "base_url": f"http://127.0.0.1:{port}/v1",
                "api_key_env": None,
            }
        },
        routes={"smollm2-http": {"targets": [{"backend": "local-openai", "model": MODEL_ALIAS}]}},
        default_route="smollm2-http",
    )
    async with serving(config) as served:
        yield served


async def test_streams_text_from_an_openai_compatible_server(routed: Served) -> None:
    events = await generate(routed.stub, start(sampling={"temperature": 0, "max_tokens": 10}))

    assert kinds(events)[0] == "started"
    assert (events[0].started.backend, events[0].started.model) == ("local-openai", MODEL_ALIAS)
    assert set(kinds(events)[1:-1]) == {"chunk"}
    assert [event.offset for event in events] == list(range(len(events)))
    assert text(events).strip()
    completed = events[-1].completed
    assert completed.finish_reason == ev_pb.FINISH_REASON_LENGTH
    assert completed.usage.completion_tokens == 10
    assert (completed.backend, completed.model) == ("local-openai", MODEL_ALIAS)


async def test_natural_stop_and_stop_sequences(routed: Served) -> None:
    full = await generate(routed.stub, start(sampling={"temperature": 0, "max_tokens": 24}))
    stop = text(full).split()[2]

    events = await generate(
        routed.stub, start(stop=[stop], sampling={"temperature": 0, "max_tokens": 24})
    )

    assert stop not in text(events)
    assert text(full).startswith(text(events))
    assert events[-1].completed.finish_reason in {
        ev_pb.FINISH_REASON_STOP, ev_pb.FINISH_REASON_STOP_SEQUENCE
    }  # fmt: skip


async def test_cancel_closes_the_upstream_connection(routed: Served, proxy: Proxy) -> None:
    call = routed.stub.Generate()
    await call.write(start("Write a long story about the sea.", sampling={"max_tokens": 400}))
    await read_events(call, limit=4)
    await call.write(cancel())
    await call.done_writing()
    events = await read_events(call)

    assert events[-1].completed.finish_reason == ev_pb.FINISH_REASON_CANCELLED
    await _assert_upstream_stopped(proxy)


async def test_client_disconnect_closes_the_upstream_connection(
    routed: Served, proxy: Proxy
) -> None:
    call = routed.stub.Generate(iter([start("Write a long story.", sampling={"max_tokens": 400})]))
    await read_events(call, limit=4)

    call.cancel()

    await _assert_upstream_stopped(proxy)
    assert await call.code() == grpc.StatusCode.CANCELLED


async def _assert_upstream_stopped(proxy: Proxy) -> None:
    async with asyncio.timeout(5):
        await proxy.client_closed.wait()
    relayed = proxy.upstream_bytes
    await asyncio.sleep(0.3)
    assert proxy.upstream_bytes == relayed
