"""The OpenAI backend handles what one network read brings in one pass."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from llmrouter_server.backends.base import BackendRequest, Delta
from llmrouter_server.backends.openai import OpenAIBackend
from llmrouter_server.config import OpenAIBackendConfig
from llmrouter_server.errors import BackendProtocolError
from llmrouter_server.values import FinishReason, Message, Role, Sampling

TOKENS = [" t0", " t1", " t2"]
EVENTS = b"".join(
    b'data: {"choices":[{"delta":{"content":"%s"}}]}\n\n' % token.encode() for token in TOKENS
)
END = b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'


def _backend(body: bytes) -> OpenAIBackend:
    """A backend whose upstream answers ``body`` in one network read."""

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, content=body, headers=headers)

    config = OpenAIBackendConfig(base_url="http://upstream.test/v1", api_key_env=None)
    return OpenAIBackend("up", config, httpx.MockTransport(handler))


def _request(*, merge_reads: bool) -> BackendRequest:
    return BackendRequest(
        model="m",
        messages=(Message(Role.USER, "hi"),),
        max_tokens=16,
        sampling=Sampling(),
        merge_reads=merge_reads,
    )


async def _deltas(backend: OpenAIBackend, request: BackendRequest) -> list[Delta]:
    return [delta async for delta in backend.stream(request)]


async def test_one_delta_per_token_unless_the_caller_coalesces() -> None:
    deltas = await _deltas(_backend(EVENTS + END), _request(merge_reads=False))

    assert deltas == [
        *(Delta(token, 1) for token in TOKENS),
        Delta(finish_reason=FinishReason.STOP),
    ]


async def test_a_coalescing_caller_gets_one_delta_for_the_tokens_of_one_read() -> None:
    deltas = await _deltas(_backend(EVENTS + END), _request(merge_reads=True))

    assert deltas == [Delta(" t0 t1 t2", 3), Delta(finish_reason=FinishReason.STOP)]


@pytest.mark.parametrize("merge_reads", [False, True])
async def test_the_tokens_before_a_malformed_event_of_the_same_read_are_kept(
    merge_reads: bool,
) -> None:
    stream = _backend(EVENTS + b"data: {not json\n\n" + END).stream(
        _request(merge_reads=merge_reads)
    )
    received: list[Delta] = []

    async def read() -> None:
        async for delta in stream:
            received.append(delta)  # noqa: PERF401 - kept up to the error

    with pytest.raises(BackendProtocolError, match="malformed stream event"):
        await read()

    assert "".join(d.text for d in received) == "".join(TOKENS)
    assert sum(d.token_count for d in received) == len(TOKENS)


class KeepAliveUpstream:
    """Answers every request on a connection with chunked SSE, keeping it open;
    counts the connections it accepted."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                self.requests += 1
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"transfer-encoding: chunked\r\n\r\n"
                )
                for event in (*EVENTS.split(b"\n\n")[:-1], *END.split(b"\n\n")[:-1]):
                    writer.write(b"%x\r\n%s\n\n\r\n" % (len(event) + 2, event))
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def test_a_finished_stream_gives_its_connection_back_for_the_next_request() -> None:
    upstream = KeepAliveUpstream()
    server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    config = OpenAIBackendConfig(base_url=f"http://127.0.0.1:{port}/v1", api_key_env=None)
    backend = OpenAIBackend("up", config)
    try:
        for _ in range(3):
            deltas = await _deltas(backend, _request(merge_reads=False))
            assert "".join(d.text for d in deltas) == "".join(TOKENS)
    finally:
        await backend.close()
        server.close()
        await server.wait_closed()

    assert (upstream.requests, upstream.connections) == (3, 1)
