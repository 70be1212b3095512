"""The SSE reader: events across arbitrary network-read boundaries."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from llmrouter_server.backends.sse import ServerSentEvent, read_batches

BODY = (
    b": a comment\r\n"
    b'data: {"a": 1}\r\n\r\n'
    b"event: ping\ndata: first\ndata: second\n\n"
    b"data:no-space\rdata: caf\xc3\xa9\r\r"
    b"data: [DONE]\n\n"
)
EVENTS = [
    ServerSentEvent('{"a": 1}'),
    ServerSentEvent("first\nsecond", "ping"),
    ServerSentEvent("no-space\ncafé"),
    ServerSentEvent("[DONE]"),
]


async def _events(chunks: AsyncIterator[bytes]) -> list[ServerSentEvent]:
    """Every event of every batch, in order."""
    return [event async for batch in read_batches(chunks) for event in batch]


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for index in range(0, len(body), size):
        yield body[index : index + size]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, 4096])
async def test_events_are_the_same_however_the_body_is_split(size: int) -> None:
    assert await _events(_chunks(BODY, size)) == EVENTS


async def test_an_unterminated_last_event_is_not_dispatched() -> None:
    events = await _events(_chunks(b"data: a\n\ndata: partial", 4))

    assert events == [ServerSentEvent("a")]


LF_BODY = (
    b": keep-alive\n\n"
    b'data: {"a": 1}\n\n'
    b"event: ping\ndata: first\ndata: second\n\n\n"
    b"data:no-space\n\n"
    b"event: lonely\n\n"
    b"data: caf\xc3\xa9\n\n"
    b"data: [DONE]\n\n"
)
LF_EVENTS = [
    ServerSentEvent('{"a": 1}'),
    ServerSentEvent("first\nsecond", "ping"),
    ServerSentEvent("no-space"),
    ServerSentEvent("café"),
    ServerSentEvent("[DONE]"),
]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, 4096])
async def test_lf_only_streams_take_whole_events_per_read_with_the_same_result(size: int) -> None:
    assert await _events(_chunks(LF_BODY, size)) == LF_EVENTS


async def test_a_cr_after_lf_only_events_switches_to_lines_without_losing_any() -> None:
    body = LF_BODY.replace(b"data: [DONE]\n\n", b"data: x\r\n\r\ndata: [DONE]\r\n\r\n")

    events = await _events(_chunks(body, 9))

    assert events == [*LF_EVENTS[:-1], ServerSentEvent("x"), ServerSentEvent("[DONE]")]
