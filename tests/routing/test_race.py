"""RACE against two real OpenAI-compatible upstreams on loopback sockets.

Target 0 is late to its first token, target 1 answers at once. The upstream
records, on its own side of each socket, when it wrote its first token and
when the router closed the connection, so the tests see what the router did
to the loser's connection, not what the router says it did.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import pytest
from llmrouter.v1 import events_pb2 as ev_pb

from tests.helpers import Served, generate, kinds, loopback_config, serving, start, text

pytestmark = pytest.mark.timeout(10)

ROUTE = "race"
RACE_AFTER = 0.1
LATE = 2.0
"""Seconds the slow upstream waits before its first token."""
PROMPT_TOKENS = 5


@dataclass
class Upstream:
    """An OpenAI-compatible ``/v1/chat/completions`` SSE server, one request per connection.

    Attributes:
        tokens: The answer, one SSE chunk per token.
        first_delay: Seconds between the request and the first token.
        delay: Seconds between later tokens.
        connections: Connections accepted.
        first_token_at: ``time.monotonic()`` when each response's first token was written.
        client_closed_at: ``time.monotonic()`` when the client closed (EOF or reset)
            a connection before the response ended.
        finished: Responses written to the end marker.
    """

    tokens: Sequence[str]
    first_delay: float = 0.0
    delay: float = 0.0
    connections: int = 0
    first_token_at: list[float] = field(default_factory=list)
    client_closed_at: list[float] = field(default_factory=list)
    finished: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await _read_request(reader)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
            )
            await writer.drain()
            # The client sends nothing more: a read that ends is its close.
            gone = asyncio.ensure_future(_until_eof(reader))
            answer = asyncio.ensure_future(self._answer(writer))
            await asyncio.wait({gone, answer}, return_when=asyncio.FIRST_COMPLETED)
            if gone.done() and not answer.done():
                self.client_closed_at.append(time.monotonic())
                self.closed.set()
            for task in (gone, answer):
                task.cancel()
            await asyncio.gather(gone, answer, return_exceptions=True)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, writer: asyncio.StreamWriter) -> None:
        for index, token in enumerate(self.tokens):
            await asyncio.sleep(self.first_delay if index == 0 else self.delay)
            _event(writer, {"choices": [{"delta": {"content": token}}]})
            await writer.drain()
            if index == 0:
                self.first_token_at.append(time.monotonic())
        usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": len(self.tokens)}
        _event(writer, {"choices": [{"delta": {}, "finish_reason": "stop"}], "usage": usage})
        writer.write(b"data: [DONE]\n\n")
        await writer.drain()
        self.finished += 1


def _event(writer: asyncio.StreamWriter, payload: object) -> None:
    writer.write(f"data: {json.dumps(payload)}\n\n".encode())


async def _until_eof(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError):
        while await reader.read(4096):
            pass


async def _read_request(reader: asyncio.StreamReader) -> dict[str, object]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.decode().split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    body: dict[str, object] = json.loads(await reader.readexactly(length))
    return body


@asynccontextmanager
async def _race(slow: Upstream, fast: Upstream) -> AsyncIterator[Served]:
    async with AsyncExitStack() as stack:
        for upstream in (slow, fast):
            await upstream.start()
            stack.push_async_callback(upstream.stop)
        backends = {
            name: {"kind": "openai", "base_url": upstream.base_url, "api_key_env": None}
            for name, upstream in (("a", slow), ("b", fast))
        }
        config = loopback_config(
            backends=backends,
            routes={
                ROUTE: {
                    "policy": "race",
                    "race_after_seconds": RACE_AFTER,
                    "targets": [
                        {"backend": "a", "model": "model-a"},
                        {"backend": "b", "model": "model-b"},
                    ],
                }
            },
            default_route=ROUTE,
        )
        yield await stack.enter_async_context(serving(config))


SLOW_TOKENS = [" slow", " answer"]
FAST_TOKENS = [" The", " fast", " one", " wins"]


async def test_a_late_first_token_starts_the_next_target_whose_first_token_wins() -> None:
    slow = Upstream(SLOW_TOKENS, first_delay=LATE)
    fast = Upstream(FAST_TOKENS)
    async with _race(slow, fast) as served:
        events = await generate(served.stub, start(model=ROUTE))
        async with asyncio.timeout(1):
            await slow.closed.wait()

    assert kinds(events) == ["started", "chunk", "chunk", "chunk", "chunk", "completed"]
    assert text(events) == "".join(FAST_TOKENS)
    completed = events[-1].completed
    assert (completed.attempts, completed.model, completed.backend) == (2, "model-b", "b")
    assert completed.finish_reason == ev_pb.FINISH_REASON_STOP
    assert (completed.usage.prompt_tokens, completed.usage.completion_tokens) == (PROMPT_TOKENS, 4)
    assert [
        (u.attempt, u.target, u.model, u.usage.prompt_tokens, u.usage.completion_tokens)
        for u in completed.attempt_usage
    ] == [(1, 0, "model-a", 0, 0), (2, 1, "model-b", PROMPT_TOKENS, 4)]
    assert (slow.connections, fast.connections) == (1, 1)
    assert (slow.first_token_at, slow.finished, fast.finished) == ([], 0, 1)
    [won_at] = fast.first_token_at
    [lost_at] = slow.client_closed_at
    assert 0 <= lost_at - won_at < 0.1


async def test_a_first_token_before_race_after_never_contacts_the_next_target() -> None:
    # The first token comes at once; the answer takes longer than race_after,
    # so a second target launched by the timer would have connected by the end.
    tokens = [" on", " time", " and", " alone"]
    first = Upstream(tokens, delay=RACE_AFTER)
    second = Upstream(FAST_TOKENS)
    async with _race(first, second) as served:
        began = time.monotonic()
        events = await generate(served.stub, start(model=ROUTE))
        took = time.monotonic() - began

    assert took > 2 * RACE_AFTER
    assert text(events) == "".join(tokens)
    completed = events[-1].completed
    assert (completed.attempts, completed.model, completed.backend) == (1, "model-a", "a")
    assert (first.connections, first.finished, first.client_closed_at) == (1, 1, [])
    assert second.connections == 0
