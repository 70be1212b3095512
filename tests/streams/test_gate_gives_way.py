"""A generation gives its backend slot to a caller that reads, and only to one that reads.

One scripted backend with one slot (``max_concurrency`` 1). A caller that
does not read takes ``started`` with its one credit (CREDIT flow) and grants
no more; ``release_contended_after_seconds`` is short here (0.2 s) and
``release_after_seconds`` long (60 s), so a release means the contended one.

* A generation whose caller has not read for ``release_contended_after``
  gives way to a reader that queues even though its window has room, and makes
  no new backend request until its caller reads again; then it continues
  exactly.
* A paused generation gives way to a reader the same way, and continues
  exactly once resumed.
* A generation whose caller does not read keeps its slot while only callers
  that do not read wait: it gives way to the reader that comes after them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.backends.base import BackendRequest
from llmrouter_server.backends.scripted import ScriptedBackend, Step
from llmrouter_server.routing.slots import Slots
from tests.helpers import (
    NOT_READING,
    Served,
    eventually,
    kinds,
    prompts,
    read_events,
    scripted_config,
    serving,
    start,
    started_call,
    text,
)

pytestmark = pytest.mark.timeout(20)

TOKENS = [f" w{i}" for i in range(40)]
RELEASE_CONTENDED_AFTER = 0.2
CONFIG = scripted_config(
    "one",
    limits={"max_tokens_cap": 256, "default_max_tokens": 16},
    streams={
        "release_after_seconds": 60,
        "release_contended_after_seconds": RELEASE_CONTENDED_AFTER,
    },
)


def _script(request: BackendRequest) -> list[Step]:
    """``slow`` streams a token every 20 ms (its window of 64 events does not fill
    before it gives way here), ``long`` the same for 10 s; anything else streams
    at once."""
    prompt = request.messages[0].content
    if prompt == "slow":
        return [Step(token, delay=0.02) for token in TOKENS]
    if prompt == "long":
        return [Step(f" l{i}", delay=0.02) for i in range(500)]
    return [Step(token) for token in TOKENS]


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend("one", _script, max_concurrency=1)


@pytest.fixture
async def served(backend: ScriptedBackend) -> AsyncIterator[Served]:
    async with serving(CONFIG, {"one": backend}) as served:
        yield served


def _slots(served: Served) -> Slots:
    return served.server.generations.router.resolve("one-model").targets[0].slots


async def _finish(call: Any, first: list[Any]) -> list[Any]:
    """Grants plenty of credits and reads the call to its end."""
    await call.write(svc_pb.GenerateRequest(grant={"credits": 1000}))
    await call.done_writing()
    return first + await read_events(call)


async def test_a_caller_that_stopped_reading_gives_way_before_its_window_fills(
    served: Served, backend: ScriptedBackend
) -> None:
    slots = _slots(served)
    stalled, generation, started = await started_call(
        served, "slow", flow=NOT_READING, sampling={"max_tokens": 40}
    )
    await eventually(lambda: generation.tally.usage.completion_tokens >= 1)

    reader_call = served.stub.Generate(iter([start("reader", sampling={"max_tokens": 5})]))
    reader = await read_events(reader_call)

    assert text(reader) == "".join(TOKENS[:5])
    assert not generation.log.blocked()  # its window had room: it gave way all the same
    produced = generation.tally.usage.completion_tokens
    assert 0 < produced < 40
    # Its slot is free now, and it does not take it back while its caller does not read.
    await eventually(lambda: slots.in_use == 0 or len(backend.requests) > 2)
    assert prompts(backend) == ["slow", "reader"]
    assert slots.in_use == 0

    events = await _finish(stalled, [started])

    assert text(events) == "".join(TOKENS)
    assert [e.offset for e in events] == list(range(len(events)))
    assert prompts(backend) == ["slow", "reader", "slow"]
    assert backend.requests[-1].continuation == "".join(TOKENS[:produced])
    completed = events[-1].completed
    assert (completed.usage.completion_tokens, completed.attempts) == (40, 1)


async def test_a_paused_generation_gives_its_slot_to_a_reader_and_continues_when_resumed(
    served: Served, backend: ScriptedBackend
) -> None:
    call = served.stub.Generate()
    await call.write(start("slow", sampling={"max_tokens": 40}))
    events = await read_events(call, limit=3)
    await call.write(svc_pb.GenerateRequest(pause={"reason": "away"}))
    events += await read_events(call, limit=1)
    while kinds(events)[-1] != "paused":
        events += await read_events(call, limit=1)

    reader_call = served.stub.Generate(iter([start("reader", sampling={"max_tokens": 5})]))
    reader = await read_events(reader_call)

    assert text(reader) == "".join(TOKENS[:5])
    assert prompts(backend) == ["slow", "reader"]
    await call.write(svc_pb.GenerateRequest(resume={}))
    await call.done_writing()
    events += await read_events(call)
    assert text(events) == "".join(TOKENS)
    assert [e.offset for e in events] == list(range(len(events)))
    assert prompts(backend) == ["slow", "reader", "slow"]
    assert events[-1].completed.usage.completion_tokens == 40


async def test_a_stalled_holder_keeps_its_slot_while_only_callers_that_do_not_read_wait(
    served: Served, backend: ScriptedBackend
) -> None:
    slots = _slots(served)
    holder, generation, holder_started = await started_call(
        served, "long", flow=NOT_READING, sampling={"max_tokens": 200}
    )
    await eventually(lambda: generation.log.next_offset > 1)
    stopped_reading = generation.log.recent(generation.log.next_offset)[1].time
    # A caller that does not read queues behind it.
    stalled, stalled_generation, stalled_started = await started_call(
        served, "stalled", flow=NOT_READING, sampling={"max_tokens": 3}
    )
    await eventually(lambda: slots.waiting == 1)

    # The holder's caller has not read for release_contended_after, and the holder
    # has pulled since (so it asked whether to give way) with that caller waiting:
    # it does not give its slot to a caller that does not read either.
    stale = stopped_reading + RELEASE_CONTENDED_AFTER
    await eventually(lambda: generation.log.recent(1)[0].time > stale + 0.05)
    assert (prompts(backend), backend.open_streams, slots.waiting) == (["long"], 1, 1)

    # A reader queues behind both: the holder gives way to it, and it goes first.
    reader_call = served.stub.Generate(iter([start("reader", sampling={"max_tokens": 3})]))
    reader = await read_events(reader_call)

    assert text(reader) == "".join(TOKENS[:3])
    await eventually(lambda: len(backend.requests) == 3)
    assert prompts(backend) == ["long", "reader", "stalled"]
    events = await _finish(stalled, [stalled_started])
    assert text(events) == "".join(TOKENS[:3])
    assert stalled_generation.state.value == "completed"
    await holder.write(svc_pb.GenerateRequest(cancel={"reason": "done"}))
    await holder.done_writing()
    assert kinds([holder_started, *await read_events(holder)])[-1] == "completed"
