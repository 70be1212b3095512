"""Generate on the real embedded model: events, text, options, cancel, disconnect."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import grpc
import pytest
from llama_cpp import Llama
from llmrouter.v1 import events_pb2 as ev_pb

from llmrouter_server.backends.embedded import EmbeddedBackend
from llmrouter_server.backends.llama_decode import bundled_model_path
from tests.helpers import (
    PROMPT,
    Served,
    cancel,
    eventually,
    generate,
    kinds,
    read_events,
    start,
    text,
)


async def test_streams_started_chunks_completed_with_consecutive_offsets(served: Served) -> None:
    events = await generate(served.stub, start(sampling={"temperature": 0, "max_tokens": 12}))

    assert kinds(events)[0] == "started"
    assert kinds(events)[-1] == "completed"
    assert set(kinds(events)[1:-1]) == {"chunk"}
    assert [event.offset for event in events] == list(range(len(events)))
    assert len({event.stream_id for event in events}) == 1
    assert events[0].stream_id.startswith("gen-")
    started = events[0].started
    assert (started.route, started.backend, started.model) == (
        "smollm2-135m-instruct",
        "embedded",
        "smollm2-135m-instruct",
    )
    assert started.max_tokens == 12
    completed = events[-1].completed
    assert completed.finish_reason == ev_pb.FINISH_REASON_LENGTH
    assert completed.usage.completion_tokens == 12
    assert sum(event.chunk.token_count for event in events[1:-1]) == 12
    assert completed.usage.prompt_tokens > 0
    assert completed.usage.total_tokens == (
        completed.usage.prompt_tokens + completed.usage.completion_tokens
    )
    assert completed.attempts == 1
    assert completed.timings.time_to_first_token.ToNanoseconds() > 0
    assert completed.timings.time_to_first_token.ToNanoseconds() <= (
        completed.timings.total_time.ToNanoseconds()
    )
    assert completed.timings.tokens_per_second > 0


async def test_text_equals_llama_cpp_greedy_output_for_the_same_prompt(served: Served) -> None:
    events = await generate(served.stub, start(sampling={"temperature": 0, "max_tokens": 24}))

    llm = Llama(model_path=str(bundled_model_path()), n_ctx=2048, verbose=False)
    reply = llm.create_chat_completion(
        messages=[{"role": "user", "content": PROMPT}], max_tokens=24, temperature=0
    )
    assert text(events) == reply["choices"][0]["message"]["content"]  # type: ignore[index]
    assert text(events).strip()


async def test_natural_stop_reports_stop_and_usage(served: Served) -> None:
    events = await generate(
        served.stub,
        start("Reply with the single word: yes", sampling={"temperature": 0, "max_tokens": 64}),
    )

    completed = events[-1].completed
    assert completed.finish_reason == ev_pb.FINISH_REASON_STOP
    assert 0 < completed.usage.completion_tokens < 64
    assert completed.usage.completion_tokens == sum(e.chunk.token_count for e in events[1:-1])


async def test_progress_metadata_and_token_ids_when_asked(served: Served) -> None:
    options = {"include_progress": True, "include_metadata": True, "include_token_ids": True}
    events = await generate(
        served.stub, start(stream_options=options, sampling={"temperature": 0, "max_tokens": 8})
    )

    chunks = [event.chunk for event in events if event.HasField("chunk")]
    assert [chunk.progress.completion_tokens for chunk in chunks] == list(
        _running_total([chunk.token_count for chunk in chunks])
    )
    assert {chunk.progress.max_tokens for chunk in chunks} == {8}
    assert {(c.metadata.backend, c.metadata.model, c.metadata.attempt) for c in chunks} == {
        ("embedded", "smollm2-135m-instruct", 1)
    }
    assert [len(chunk.token_ids) for chunk in chunks] == [chunk.token_count for chunk in chunks]
    llm = Llama(model_path=str(bundled_model_path()), vocab_only=True, verbose=False)
    ids = [token for chunk in chunks for token in chunk.token_ids]
    assert llm.detokenize(ids).decode() == "".join(chunk.text for chunk in chunks)


async def test_chunks_carry_no_progress_or_metadata_unless_asked(served: Served) -> None:
    events = await generate(served.stub, start(sampling={"temperature": 0, "max_tokens": 4}))

    chunks = [event.chunk for event in events if event.HasField("chunk")]
    assert not any(c.HasField("progress") or c.HasField("metadata") or c.token_ids for c in chunks)


async def test_stop_sequence_cuts_the_text_before_it(served: Served) -> None:
    unstopped = text(
        await generate(served.stub, start(sampling={"temperature": 0, "max_tokens": 24}))
    )
    stop = unstopped.split()[2]
    events = await generate(
        served.stub, start(stop=[stop], sampling={"temperature": 0, "max_tokens": 24})
    )

    assert text(events) == unstopped[: unstopped.index(stop)]
    assert events[-1].completed.finish_reason == ev_pb.FINISH_REASON_STOP_SEQUENCE


async def test_client_chosen_stream_id_is_used(served: Served) -> None:
    events = await generate(served.stub, start(stream_id="my-stream.1", sampling={"max_tokens": 2}))

    assert {event.stream_id for event in events} == {"my-stream.1"}


async def test_json_output_is_valid_json(served: Served) -> None:
    schema = (
        '{"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}'
    )
    events = await generate(
        served.stub,
        start(
            "Give a color as JSON.",
            response_format={"format": "OUTPUT_FORMAT_JSON", "json_schema": schema},
            sampling={"temperature": 0, "max_tokens": 48},
        ),
    )

    value = json.loads(text(events))
    assert isinstance(value["color"], str)


async def test_cancel_request_ends_with_cancelled_and_stops_decoding(served: Served) -> None:
    backend: EmbeddedBackend = served.backend("embedded")
    call = served.stub.Generate()
    await call.write(start("Write a long story about the sea.", sampling={"max_tokens": 256}))
    seen = await read_events(call, limit=4)
    await call.write(cancel())
    await call.done_writing()
    events = seen + await read_events(call)

    assert kinds(events)[-1] == "completed"
    completed = events[-1].completed
    assert completed.finish_reason == ev_pb.FINISH_REASON_CANCELLED
    assert completed.usage.completion_tokens < 256
    assert await call.code() == grpc.StatusCode.OK
    await _assert_decoding_stopped(backend)


async def test_client_disconnect_stops_decoding(served: Served) -> None:
    backend: EmbeddedBackend = served.backend("embedded")
    call = served.stub.Generate(
        iter([start("Count from one to five hundred.", sampling={"max_tokens": 256})])
    )
    await read_events(call, limit=4)
    assert backend.busy == 1

    call.cancel()

    await _assert_decoding_stopped(backend)
    followup = await generate(served.stub, start(sampling={"max_tokens": 3}))
    assert kinds(followup)[-1] == "completed"


async def test_second_generation_waits_in_line_for_the_only_instance(served: Served) -> None:
    first = served.stub.Generate(iter([start(sampling={"temperature": 0, "max_tokens": 24})]))
    await read_events(first, limit=2)  # started and a chunk: the instance is busy
    second_events = asyncio.ensure_future(
        generate(served.stub, start(sampling={"temperature": 0, "max_tokens": 4}))
    )
    first_events = await read_events(first)
    events = await second_events

    assert kinds(events)[:2] == ["started", "queued"]
    assert events[1].queued.position == 1
    assert kinds(events)[-1] == "completed"
    assert events[-1].completed.timings.queue_time.ToNanoseconds() > 0
    assert kinds(first_events)[-1] == "completed"


async def _assert_decoding_stopped(backend: EmbeddedBackend) -> None:
    await eventually(lambda: backend.busy == 0)
    steps = backend.decode_steps
    await asyncio.sleep(0.3)
    assert backend.decode_steps == steps


def _running_total(values: list[int]) -> list[int]:
    total, out = 0, []
    for value in values:
        total += value
        out.append(total)
    return out


@pytest.fixture(autouse=True)
async def _idle_after(served: Served) -> AsyncIterator[None]:
    """Each test leaves the shared server with no generation running."""
    yield
    await eventually(lambda: not served.server.generations.registry.running())
