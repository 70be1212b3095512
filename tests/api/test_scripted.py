"""Fault scenarios driven by the scripted backend through the real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from llmrouter.v1 import events_pb2 as ev_pb

from llmrouter_server.auth.principal import OPEN
from llmrouter_server.backends.scripted import ScriptedBackend, Step, words
from llmrouter_server.errors import BackendConnectError
from llmrouter_server.streams.lifecycle import StreamState
from tests.helpers import (
    Served,
    error_info,
    eventually,
    generate,
    kinds,
    read_events,
    scripted_config,
    serving,
    start,
    text,
)

CONFIG = scripted_config("fake")


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend("fake", words("one two three four five"), max_concurrency=2)


@pytest.fixture
async def served(backend: ScriptedBackend) -> AsyncIterator[Served]:
    async with serving(CONFIG, {"fake": backend}) as served:
        yield served


async def test_exact_text_and_one_chunk_per_delta(served: Served) -> None:
    events = await generate(served.stub, start())

    assert [e.chunk.text for e in events if e.HasField("chunk")] == [
        "one", " two", " three", " four", " five"
    ]  # fmt: skip
    assert events[-1].completed.usage.completion_tokens == 5
    assert events[-1].completed.finish_reason == ev_pb.FINISH_REASON_STOP


async def test_failure_after_two_chunks_is_retried_then_ends_unavailable_at_its_offset(
    served: Served, backend: ScriptedBackend
) -> None:
    backend.script = [Step("a"), Step("b"), Step(error=BackendConnectError("fake", "reset"))]
    call = served.stub.Generate(iter([start()]))
    events: list[Any] = []

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _read_into(call, events)

    assert kinds(events) == [
        "started", "chunk", "chunk",
        "attempt_failed", "fallback_used", "attempt_failed", "fallback_used", "attempt_failed",
    ]  # fmt: skip
    assert text(events) == "ab"
    failures = [e.attempt_failed for e in events if e.HasField("attempt_failed")]
    assert [(f.attempt, f.tokens, f.will_retry) for f in failures] == [
        (1, 2, True), (2, 0, True), (3, 0, False)
    ]  # fmt: skip
    assert failures[0].reason == "reset after 2 tokens"
    assert failures[1].reason == "reset before the first token"
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert caught.value.details() == (
        "route 'fake-model': 3 attempts failed; the last: backend 'fake': "
        "reset before the first token"
    )
    info = error_info(caught.value)
    assert (info.reason, info.metadata["offset"], info.metadata["attempts"]) == (
        "BACKEND_CONNECT", "8", "3"
    )  # fmt: skip
    assert info.metadata["stream_id"] == events[0].stream_id
    assert backend.open_streams == 0


async def test_third_generation_queues_behind_a_limit_of_two(
    served: Served, backend: ScriptedBackend
) -> None:
    backend.script = [Step(stall=True)]
    blocked = [served.stub.Generate(iter([start()])) for _ in range(2)]
    for call in blocked:
        await read_events(call, limit=1)
    third = served.stub.Generate(iter([start()]))

    events = await read_events(third, limit=2)
    for call in blocked:
        call.cancel()
    third.cancel()

    assert kinds(events) == ["started", "queued"]
    assert events[1].queued.position == 1
    await eventually(lambda: backend.open_streams == 0)


async def test_shutdown_ends_a_generation_running_after_the_grace_unavailable_at_its_offset(
    backend: ScriptedBackend,
) -> None:
    backend.script = [Step("x"), Step(stall=True)]
    async with serving(CONFIG, {"fake": backend}) as served:
        call = served.stub.Generate(iter([start()]))
        events = await read_events(call, limit=2)
        stream_id = events[0].stream_id
        stopping = asyncio.create_task(served.server.stop(0.2))
        await eventually(lambda: not served.server.generations.accepting)
        health = await health_pb2_grpc.HealthStub(served.channel).Check(
            health_pb2.HealthCheckRequest()
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await generate(served.stub, start())
        rest: list[Any] = []
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await _read_into(call, rest)
        await stopping
        status = served.server.generations.status(OPEN, stream_id)

    assert kinds(events) == ["started", "chunk"]
    assert rest == []
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    assert ended.value.details() == "the server shut down; re-attach elsewhere from offset 2"
    info = error_info(ended.value)
    assert (info.reason, dict(info.metadata)) == (
        "UNAVAILABLE", {"stream_id": stream_id, "offset": "2"}
    )  # fmt: skip
    assert status.state is StreamState.FAILED
    assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert backend.open_streams == 0


async def _read_into(call: Any, events: list[Any]) -> None:
    while (response := await call.read()) is not grpc.aio.EOF:
        events.append(response.event)
