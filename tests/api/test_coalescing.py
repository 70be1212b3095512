"""Coalescing through the real server, with a scripted backend and real readers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc
import pytest
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.backends.scripted import ScriptedBackend, Step, words
from tests.helpers import (
    Served,
    cancel,
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
FORTY = " ".join(f"w{i}" for i in range(40))
"""Forty one-token words."""


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend("fake", words("one two three four five"))


@pytest.fixture
async def served(backend: ScriptedBackend) -> AsyncIterator[Served]:
    async with serving(CONFIG, {"fake": backend}) as served:
        yield served


def coalescing(mode: str, **fields: Any) -> dict[str, Any]:
    return {"coalescing": {"mode": f"COALESCE_MODE_{mode}", **fields}}


def chunks(events: list[Any]) -> list[tuple[str, int]]:
    return [(e.chunk.text, e.chunk.token_count) for e in events if e.HasField("chunk")]


async def test_size_merges_until_max_chars_and_sends_the_rest_at_completion(
    served: Served,
) -> None:
    events = await generate(
        served.stub, start(stream_options=coalescing("SIZE", max_chars=8), sampling={})
    )

    assert chunks(events) == [("one two three", 3), (" four five", 2)]
    assert events[-1].completed.usage.completion_tokens == 5


async def test_token_and_unspecified_send_one_chunk_per_delta(served: Served) -> None:
    for mode in ("TOKEN", "UNSPECIFIED"):
        events = await generate(served.stub, start(stream_options=coalescing(mode)))

        assert [t for t, _ in chunks(events)] == ["one", " two", " three", " four", " five"]


async def test_time_merges_a_fast_backend_and_sends_the_first_token_at_once(
    served: Served, backend: ScriptedBackend
) -> None:
    backend.script = words(FORTY, delay=0.01)
    options = coalescing("TIME", interval=timedelta(milliseconds=100))

    events = await generate(served.stub, start(stream_options=options, sampling={"max_tokens": 64}))

    sent = chunks(events)
    assert text(events) == FORTY
    assert sent[0] == ("w0", 1)
    assert sum(tokens for _, tokens in sent) == 40
    assert len(sent) < 20


async def test_time_sends_pending_text_on_time_while_the_backend_is_silent(
    served: Served, backend: ScriptedBackend
) -> None:
    backend.script = [Step("a"), Step("b"), Step("c", delay=1.0)]
    options = coalescing("TIME", interval=timedelta(milliseconds=50))

    events = await generate(served.stub, start(stream_options=options))

    # Without the timer "b" would wait for "c" and go out with it.
    assert chunks(events) == [("a", 1), ("b", 1), ("c", 1)]


async def slow_reader(served: Served, options: dict[str, Any], every: float) -> list[Any]:
    """A CREDIT caller that reads one event, waits ``every`` seconds, grants one more."""
    call = served.stub.Generate()
    flow = {"mode": "FLOW_MODE_CREDIT", "initial_credits": 1}
    await call.write(start(stream_options=options, flow=flow, sampling={"max_tokens": 64}))
    events: list[Any] = []
    while not events or not events[-1].HasField("completed"):
        events += await read_events(call, limit=1)
        await asyncio.sleep(every)
        if not events[-1].HasField("completed"):
            await call.write(svc_pb.GenerateRequest(grant={"credits": 1}))
    await call.done_writing()
    return events


async def test_adaptive_under_a_slow_reader_sends_fewer_larger_chunks_than_token(
    served: Served, backend: ScriptedBackend
) -> None:
    backend.script = words(FORTY, delay=0.005)

    by_mode = {
        mode: await slow_reader(served, coalescing(mode), every=0.02)
        for mode in ("TOKEN", "ADAPTIVE")
    }

    assert len(chunks(by_mode["TOKEN"])) == 40
    adaptive = chunks(by_mode["ADAPTIVE"])
    assert text(by_mode["ADAPTIVE"]) == FORTY
    assert sum(tokens for _, tokens in adaptive) == 40
    assert len(adaptive) < 20
    assert max(tokens for _, tokens in adaptive) > 1


async def test_adaptive_returns_to_one_chunk_per_delta_once_the_reader_keeps_up(
    served: Served, backend: ScriptedBackend
) -> None:
    fast = words(" ".join(f"f{i}" for i in range(20)))
    slow = [Step(f" s{i}", delay=0.05) for i in range(10)]
    backend.script = [*fast, Step(" s", delay=0.3), *slow]
    call = served.stub.Generate()
    flow = {"mode": "FLOW_MODE_CREDIT", "initial_credits": 2}
    await call.write(
        start(stream_options=coalescing("ADAPTIVE"), flow=flow, sampling={"max_tokens": 64})
    )
    first = await read_events(call, limit=2)
    await asyncio.sleep(0.15)  # the fast words arrive while the caller has no credit
    await call.write(svc_pb.GenerateRequest(grant={"credits": 1000}))
    await call.done_writing()
    events = first + await read_events(call)

    sent = [t for t, _ in chunks(events)]
    assert "".join(sent) == "".join(step.text for step in backend.script)
    assert sum(tokens for _, tokens in chunks(events)) == 31
    assert len(sent) <= 5 + 11  # the twenty fast words in a few chunks
    assert sent[-10:] == [f" s{i}" for i in range(10)]  # then one chunk per delta


async def test_a_cancel_sends_the_pending_text_before_its_completion(
    served: Served, backend: ScriptedBackend
) -> None:
    backend.script = [Step("a"), Step("b"), Step(stall=True)]
    options = coalescing("TIME", interval=timedelta(seconds=5))
    call = served.stub.Generate()
    await call.write(start(stream_options=options))
    first = await read_events(call, limit=2)
    await eventually(lambda: backend.emitted == 2)
    await call.write(cancel())
    await call.done_writing()
    events = first + await read_events(call)

    assert kinds(events) == ["started", "chunk", "chunk", "completed"]
    assert chunks(events) == [("a", 1), ("b", 1)]  # "b" was pending: produced text is kept
    assert events[-1].completed.finish_reason == ev_pb.FINISH_REASON_CANCELLED
    assert events[-1].completed.usage.completion_tokens == 2


BAD = [
    ("SIZE without max_chars", coalescing("SIZE"), "max_chars"),
    ("SIZE above the cap", coalescing("SIZE", max_chars=65537), "max_chars"),
    ("SIZE with an interval", coalescing("SIZE", max_chars=8, interval={"nanos": 1}), "interval"),
    ("TIME without interval", coalescing("TIME"), "interval"),
    ("TIME with a zero interval", coalescing("TIME", interval={}), "interval"),
    ("TIME with a negative interval", coalescing("TIME", interval={"seconds": -1}), "interval"),
    ("TIME above the cap", coalescing("TIME", interval={"seconds": 11}), "interval"),
    ("TIME with max_chars", coalescing("TIME", interval={"seconds": 1}, max_chars=4), "max_chars"),
    ("ADAPTIVE with max_chars", coalescing("ADAPTIVE", max_chars=4), "max_chars"),
    ("ADAPTIVE with an interval", coalescing("ADAPTIVE", interval={"seconds": 1}), "interval"),
    ("TOKEN with max_chars", coalescing("TOKEN", max_chars=4), "max_chars"),
    (
        "UNSPECIFIED with an interval",
        coalescing("UNSPECIFIED", interval={"seconds": 1}),
        "interval",
    ),
    ("an unknown mode", {"coalescing": {"mode": 9}}, "mode"),
]


@pytest.mark.parametrize(("options", "field"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
async def test_bad_coalescing_is_invalid_argument_naming_the_field(
    served: Served, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await generate(served.stub, start(stream_options=options))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(f"start.stream_options.coalescing.{field}: ")
