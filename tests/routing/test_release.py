"""A paused generation gives its backend back and continues by continuation.

Regression tests for the continuation that resumes a released generation:
usage must count both backend streams once each, and text a stop matcher
held back at the release must be neither repeated nor lost.

Where the producer stops is made exact with CREDIT flow and a window of two
events: the caller takes ``credits`` events and the producer is held at its
gate once three unread events wait (``window_events`` 2: lag > 2), that is
after ``credits + 3`` events. Held there for ``release_after_seconds``, the
generation closes its backend stream (the scripted backend's
``open_streams`` drops to 0, the signal the tests wait for).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.auth.principal import OPEN
from llmrouter_server.backends.scripted import ScriptedBackend, Step
from tests.helpers import Served, eventually, kinds, loopback_config, read_events, serving, start

pytestmark = pytest.mark.timeout(10)

ROUTE = "scripted"
WINDOW_EVENTS = 2
"""The producer is held once more than this many events are unread."""

CONFIG = loopback_config(
    backends={"fake": {"kind": "openai", "api_key_env": None}},
    routes={ROUTE: {"targets": [{"backend": "fake", "model": "m"}]}},
    default_route=ROUTE,
    limits={"max_tokens_cap": 256, "default_max_tokens": 16},
    streams={"window_events": WINDOW_EVENTS, "release_after_seconds": 0.2},
)


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend("fake", [])


@pytest.fixture
async def served(backend: ScriptedBackend) -> AsyncIterator[Served]:
    async with serving(CONFIG, {"fake": backend}) as served:
        yield served


async def _released_and_resumed(
    served: Served, backend: ScriptedBackend, credits: int, **fields: Any
) -> list[Any]:
    """Runs one generation held after ``credits + 3`` events, released while paused,
    then resumed; returns every event of the call."""
    call = served.stub.Generate()
    flow = {"mode": "FLOW_MODE_CREDIT", "initial_credits": credits}
    await call.write(start(model=ROUTE, flow=flow, **fields))
    events = await read_events(call, limit=credits)
    generation = served.server.generations.registry.get(OPEN, events[0].stream_id)
    # The pause lands once the producer is held at its gate (its window is full).
    await eventually(generation.log.blocked)
    await call.write(svc_pb.GenerateRequest(pause={"reason": "away"}))
    # Released while paused (a slow reader may have made it release once before).
    await eventually(lambda: backend.open_streams == 0)
    await call.write(svc_pb.GenerateRequest(resume={}))
    await call.write(svc_pb.GenerateRequest(grant={"credits": 1000}))
    await call.done_writing()
    return events + await read_events(call)


def _split_at_pause(events: list[Any]) -> tuple[str, str]:
    """The chunk text before the ``paused`` event and after it."""
    at = kinds(events).index("paused")
    before = "".join(e.chunk.text for e in events[:at] if e.HasField("chunk"))
    after = "".join(e.chunk.text for e in events[at:] if e.HasField("chunk"))
    return before, after


async def test_usage_after_a_release_counts_every_token_once(
    served: Served, backend: ScriptedBackend
) -> None:
    tokens = [f" w{i}" for i in range(100)]
    backend.script = [Step(token) for token in tokens]

    events = await _released_and_resumed(served, backend, credits=5, sampling={"max_tokens": 100})

    before, after = _split_at_pause(events)
    held = kinds(events).index("paused") - 1  # the chunks before the pause
    assert held >= 5
    assert before == "".join(tokens[:held])
    assert before + after == "".join(tokens)
    assert kinds(events).count("chunk") == 100
    assert "attempt_failed" not in kinds(events)
    assert "fallback_used" not in kinds(events)
    assert [e.offset for e in events] == list(range(len(events)))
    completed = events[-1].completed
    chunk_tokens = sum(e.chunk.token_count for e in events if e.HasField("chunk"))
    assert (completed.usage.completion_tokens, chunk_tokens) == (100, 100)
    assert completed.attempts == 1
    assert completed.finish_reason == ev_pb.FINISH_REASON_LENGTH
    # The released stream ended before it could report usage; the second
    # reported 1 prompt token: the sum over both streams.
    assert completed.usage.prompt_tokens == 1
    assert [(u.attempt, u.usage.completion_tokens) for u in completed.attempt_usage] == [(1, 100)]
    assert (backend.requests[0].continuation, backend.requests[0].max_tokens) == ("", 100)
    assert (backend.requests[-1].continuation, backend.requests[-1].max_tokens) == (
        before, 100 - held
    )  # fmt: skip


STOP_CASES = [
    pytest.param(["one", " two", " ST", "ill", " more"], "one two STill more", id="not-a-stop"),
    pytest.param(["one", " two", " ST", "OP", " more"], "one two ", id="stop-completed"),
]


@pytest.mark.parametrize(("steps", "expected"), STOP_CASES)
async def test_text_held_by_the_stop_matcher_at_a_release_is_sent_once(
    served: Served, backend: ScriptedBackend, steps: list[str], expected: str
) -> None:
    backend.script = [Step(step) for step in steps]

    # Held after 1 + 3 events: started, "one", " two", and " " (" ST" with "ST" held).
    events = await _released_and_resumed(served, backend, credits=1, stop=["STOP"])

    before, after = _split_at_pause(events)
    assert before == "one two "
    assert before + after == expected
    assert (backend.requests[0].continuation, backend.requests[-1].continuation) == (
        "",
        "one two ST",
    )
    assert [e.offset for e in events] == list(range(len(events)))
    completed = events[-1].completed
    finish = ev_pb.FINISH_REASON_STOP if "STill" in expected else ev_pb.FINISH_REASON_STOP_SEQUENCE
    assert completed.finish_reason == finish
    assert completed.attempts == 1
