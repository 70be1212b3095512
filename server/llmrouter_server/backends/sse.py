"""A lean server-sent events reader over raw response bytes.

httpx-sse decodes each network read to text and splits all of it into lines
at once; with a generation waiting, those lines (hundreds per 32 KiB read)
stay alive until it resumes. This reader keeps only the undecoded bytes and
decodes one event at a time, so a waiting stream holds at most one network
read. It implements what the OpenAI and Anthropic streams use: ``data:``
fields (joined by newlines), ``event:`` names, comments, and CR, LF or CRLF
line ends (WHATWG HTML, "Server-sent events", §9.2.6).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

_COMPACT_AT = 16 * 1024
"""Consumed bytes kept at the front of the buffer before it is compacted."""


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event."""

    data: str
    """The ``data:`` lines, joined with newlines."""
    event: str = "message"
    """The ``event:`` name."""


async def read_batches(
    chunks: AsyncIterable[bytes],
) -> AsyncGenerator[list[ServerSentEvent], None]:
    """Yields, for each network read, the events it completed (none: no yield).

    A consumer handles what one read brought in one pass, with one resume of
    this generator per read rather than per event. Streams whose lines end in
    LF (every provider we know) take the fast path: each read's complete
    events are split off at once, and an event that is a single ``data:``
    line (nearly all of them) is dispatched without a line-by-line parse.
    Once a CR appears, the rest of the body is read line by line
    (``_read_lines``).
    """
    buffer = bytearray()
    reads = aiter(chunks)
    async for chunk in reads:
        buffer += chunk
        if b"\r" in chunk:
            # At an event boundary: the fast path keeps no partial event.
            async with aclosing(_read_lines(buffer, reads)) as batches:
                async for batch in batches:
                    yield batch
            return
        end = buffer.rfind(b"\n\n")
        if end < 0:
            continue
        blocks = bytes(buffer[:end]).split(b"\n\n")
        del buffer[: end + 2]
        batch = [event for block in blocks if (event := _block(block)) is not None]
        if batch:
            yield batch


END_WAIT_SECONDS = 0.5
"""How long the rest of a body may take to end once its end marker has come."""

END_READS = 4
"""Network reads taken after the end marker before giving up on the body's end."""


async def read_to_end(batches: AsyncIterator[list[ServerSentEvent]]) -> None:
    """Reads what follows a stream's end marker (``[DONE]``, ``message_stop``) until
    the body ends, within ``END_READS`` reads and ``END_WAIT_SECONDS``.

    A response closed before its body ended takes its connection down with it;
    one read to the end gives the keep-alive connection back to the pool, so
    the next request skips a TCP (and TLS) handshake. Whatever goes wrong here
    only costs that: the answer is already complete.
    """
    with contextlib.suppress(Exception):
        async with asyncio.timeout(END_WAIT_SECONDS):
            for _ in range(END_READS):
                if await anext(batches, None) is None:
                    return


async def _read_lines(
    buffer: bytearray, reads: AsyncIterator[bytes]
) -> AsyncGenerator[list[ServerSentEvent], None]:
    """The events of ``buffer`` and the reads after it, parsed line by line."""
    start = 0
    data: list[str] = []
    event = ""
    while True:
        batch = []
        while (line := _next_line(buffer, start)) is not None:
            text, start = line
            if text:
                event = _field(text, data, event)
            elif data:
                batch.append(ServerSentEvent("\n".join(data), event or "message"))
                data, event = [], ""
        if batch:
            yield batch
        if start > _COMPACT_AT:
            del buffer[:start]
            start = 0
        chunk = await anext(reads, None)
        if chunk is None:
            return
        buffer += chunk


def _block(block: bytes) -> ServerSentEvent | None:
    """The event of one LF-separated block, if it dispatches one."""
    if block.startswith(b"data: ") and b"\n" not in block:
        return ServerSentEvent(block[6:].decode())
    data: list[str] = []
    event = ""
    for line in block.decode().split("\n"):
        if line:
            event = _field(line, data, event)
    return ServerSentEvent("\n".join(data), event or "message") if data else None


def _next_line(buffer: bytearray, start: int) -> tuple[str, int] | None:
    end = buffer.find(b"\n", start)
    carriage = buffer.find(b"\r", start, end if end >= 0 else len(buffer))
    if carriage >= 0 and (carriage + 1 < len(buffer) or end >= 0):
        # A CR ends the line; a CR LF pair counts once.
        after = carriage + 2 if buffer[carriage + 1 : carriage + 2] == b"\n" else carriage + 1
        return buffer[start:carriage].decode(), after
    if end < 0:
        return None
    return buffer[start:end].decode(), end + 1


def _field(line: str, data: list[str], event: str) -> str:
    name, _, value = line.partition(":")
    value = value.removeprefix(" ")
    if name == "data":
        data.append(value)
    elif name == "event":
        return value
    return event
