"""A caller that does not read must not keep a caller that reads from a scarce backend.

One backend with one slot (``max_concurrency`` 1), scripted. A caller that
"does not read" uses CREDIT flow with one credit: it takes the ``started``
event and never grants another, so the events after it stay unread, exactly
as for a gRPC reader that stopped.

* A generation held at its flow-control window while another generation
  queues for its backend gives its slot back (``release_contended_after``,
  here the default) long before ``release_after_seconds`` (60 s here), and
  continues exactly once its caller reads again.
* When a slot frees, a queued generation whose caller reads goes ahead of an
  earlier one whose caller has left its ``queued`` events unread; that one
  still gets the slot once no reader waits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.backends.base import BackendRequest
from llmrouter_server.backends.scripted import ScriptedBackend, Step
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
)

pytestmark = pytest.mark.timeout(20)

TOKENS = [f" w{i}" for i in range(100)]
CONFIG = scripted_config(
    "one",
    limits={"max_tokens_cap": 256, "default_max_tokens": 16},
    streams={"window_events": 4, "release_after_seconds": 60},
)


def _script(request: BackendRequest) -> list[Step]:
    """A prompt ``hold`` never finishes (until cancelled); any other streams the tokens."""
    if request.messages[0].content == "hold":
        return [Step(" held"), Step(stall=True)]
    return [Step(token) for token in TOKENS]


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend("one", _script, max_concurrency=1)


@pytest.fixture
async def served(backend: ScriptedBackend) -> AsyncIterator[Served]:
    async with serving(CONFIG, {"one": backend}) as served:
        yield served


async def test_a_generation_stalled_at_its_window_gives_its_slot_to_a_reader_that_queues(
    served: Served, backend: ScriptedBackend
) -> None:
    stalled, generation, started = await started_call(
        served, "stalled", flow=NOT_READING, sampling={"max_tokens": 100}
    )
    await eventually(generation.log.blocked)  # held at its window, holding the one slot
    assert backend.open_streams == 1

    # A caller that reads queues behind it, gets the slot, and finishes.
    reader_call = served.stub.Generate(iter([start("reader", sampling={"max_tokens": 5})]))
    reader = await read_events(reader_call)

    assert kinds(reader)[:2] == ["started", "queued"]
    assert "".join(e.chunk.text for e in reader if e.HasField("chunk")) == "".join(TOKENS[:5])
    assert prompts(backend) == ["stalled", "reader"]
    assert backend.open_streams == 0  # the stalled generation's stream was closed
    assert generation.state.value == "running"

    # Its caller reads again: it continues after the text it had, nothing lost or repeated.
    await stalled.write(svc_pb.GenerateRequest(grant={"credits": 1000}))
    await stalled.done_writing()
    events = [started, *await read_events(stalled)]
    chunks = "".join(e.chunk.text for e in events if e.HasField("chunk"))
    assert chunks == "".join(TOKENS)
    assert [e.offset for e in events] == list(range(len(events)))
    assert prompts(backend) == ["stalled", "reader", "stalled"]
    continued = backend.requests[-1]
    assert continued.continuation == "".join(TOKENS)[: len(continued.continuation)]
    assert continued.continuation  # it had text when it was released
    completed = events[-1].completed
    assert (completed.usage.completion_tokens, completed.attempts) == (100, 1)
    assert "attempt_failed" not in kinds(events)


async def test_a_freed_slot_goes_to_a_queued_reader_before_an_earlier_caller_that_does_not_read(
    served: Served, backend: ScriptedBackend
) -> None:
    slots = served.server.generations.router.resolve("one-model").targets[0].slots
    holder, _, _ = await started_call(served, "hold")
    await eventually(lambda: backend.open_streams == 1)
    stalled, stalled_generation, _ = await started_call(
        served, "stalled", flow=NOT_READING, sampling={"max_tokens": 3}
    )
    await eventually(lambda: slots.waiting == 1)
    reader_call = served.stub.Generate(iter([start("reader", sampling={"max_tokens": 3})]))
    reader = await read_events(reader_call, limit=2)
    assert kinds(reader) == ["started", "queued"]
    assert reader[1].queued.position == 1  # ahead of the caller that does not read
    assert slots.waiting == 2

    await holder.write(svc_pb.GenerateRequest(cancel={"reason": "done"}))
    await holder.done_writing()
    await read_events(holder)
    reader += await read_events(reader_call)

    assert kinds(reader)[-1] == "completed"
    # The reader's request went first; the stalled caller's once no reader waited.
    await eventually(lambda: len(backend.requests) == 3)
    assert prompts(backend) == ["hold", "reader", "stalled"]
    await stalled.write(svc_pb.GenerateRequest(grant={"credits": 1000}))
    await stalled.done_writing()
    rest = await read_events(stalled)
    assert "".join(e.chunk.text for e in rest if e.HasField("chunk")) == "".join(TOKENS[:3])
    assert stalled_generation.state.value == "completed"
