"""Progress and chunk metadata through the real server, on a scripted backend's pace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from llmrouter.v1 import events_pb2 as ev_pb

from llmrouter_server.backends.scripted import ScriptedBackend, Step
from tests.helpers import Served, generate, scripted_config, serving, start

CONFIG = scripted_config("fake")

DELAY = 0.2
"""Seconds the backend waits before each token."""

WORDS = ["one", " two", " three", " four", " five"]
MAX_TOKENS = len(WORDS)
BOTH = {"include_progress": True, "include_metadata": True}


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    backend = ScriptedBackend("fake", [Step(word, delay=DELAY) for word in WORDS])
    async with serving(CONFIG, {"fake": backend}) as served:
        yield served


async def _chunks(served: Served, **options: bool) -> tuple[list[Any], list[Any]]:
    """The chunk events of one generation up to the limit, and all its events."""
    request = start(stream_options=options, sampling={"max_tokens": MAX_TOKENS})
    events = await generate(served.stub, request)
    return [e for e in events if e.HasField("chunk")], events


async def test_progress_counts_toward_the_limit_and_grows(served: Served) -> None:
    chunk_events, events = await _chunks(served, **BOTH)
    progress = [e.chunk.progress for e in chunk_events]

    assert [e.chunk.text for e in chunk_events] == WORDS
    assert [p.completion_tokens for p in progress] == [1, 2, 3, 4, 5]
    assert {p.max_tokens for p in progress} == {MAX_TOKENS}
    assert [p.fraction for p in progress] == [n / MAX_TOKENS for n in range(1, 6)]
    elapsed = [p.elapsed.ToNanoseconds() for p in progress]
    assert elapsed == sorted(set(elapsed))  # strictly increasing
    first_token = {p.time_to_first_token.ToNanoseconds() for p in progress}
    assert first_token == {elapsed[0]}
    completed = events[-1].completed
    assert completed.finish_reason == ev_pb.FINISH_REASON_LENGTH
    assert completed.timings.time_to_first_token.ToNanoseconds() == elapsed[0]


async def test_eta_is_unset_until_a_rate_is_known_then_shrinks_to_zero(served: Served) -> None:
    chunk_events, _ = await _chunks(served, include_progress=True)
    progress = [e.chunk.progress for e in chunk_events]

    assert [p.HasField("eta") for p in progress] == [False, True, True, True, True]
    assert progress[0].tokens_per_second == 0.0
    etas = [p.eta.ToNanoseconds() for p in progress[1:]]
    assert etas == sorted(set(etas), reverse=True)  # strictly decreasing
    assert etas[-1] == 0
    for p in progress[1:]:
        remaining = p.max_tokens - p.completion_tokens
        assert p.eta.ToNanoseconds() == round(remaining / p.tokens_per_second * 1e9)


async def test_metadata_spaces_chunks_at_least_the_backend_delay_apart(served: Served) -> None:
    chunk_events, _ = await _chunks(served, **BOTH)
    metadata = [e.chunk.metadata for e in chunk_events]

    assert {(m.model, m.backend, m.attempt, m.target) for m in metadata} == {("m", "fake", 1, 0)}
    assert [m.HasField("since_previous") for m in metadata] == [False, True, True, True, True]
    assert all(m.since_previous.ToNanoseconds() >= DELAY * 1e9 for m in metadata[1:])
    produced = [m.produced_at.ToNanoseconds() for m in metadata]
    assert produced == sorted(set(produced))
    # Stamped when the text came, before the event holding it was recorded.
    assert all(
        m.produced_at.ToNanoseconds() <= e.time.ToNanoseconds()
        for m, e in zip(metadata, chunk_events, strict=True)
    )


async def test_chunks_carry_neither_unless_asked_and_each_option_only_its_own(
    served: Served,
) -> None:
    plain, _ = await _chunks(served)
    progress_only, _ = await _chunks(served, include_progress=True)
    metadata_only, _ = await _chunks(served, include_metadata=True)

    assert not any(e.chunk.HasField("progress") or e.chunk.HasField("metadata") for e in plain)
    assert all(e.chunk.HasField("progress") for e in progress_only)
    assert not any(e.chunk.HasField("metadata") for e in progress_only)
    assert all(e.chunk.metadata.HasField("produced_at") for e in metadata_only)
    assert not any(e.chunk.HasField("progress") for e in metadata_only)
