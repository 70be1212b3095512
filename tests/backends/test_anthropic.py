"""The Anthropic Messages backend: what it sends, how it reads the stream, how it fails."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest

from llmrouter_server.backends.anthropic import AnthropicBackend
from llmrouter_server.backends.base import BackendRequest, Delta
from llmrouter_server.backends.build import build_backends
from llmrouter_server.config import AnthropicBackendConfig, Config
from llmrouter_server.errors import BackendError, BackendProtocolError, BackendStatusError
from llmrouter_server.values import FinishReason, Message, Role, Sampling, Usage

REQUEST = BackendRequest(
    model="claude-test",
    messages=(
        Message(Role.SYSTEM, "Be brief."),
        Message(Role.USER, "Hi"),
        Message(Role.ASSISTANT, "Hello."),
        Message(Role.SYSTEM, "Answer in English."),
        Message(Role.USER, "Tell me a story."),
    ),
    max_tokens=7,
    sampling=Sampling(temperature=0.5, top_p=0.9, top_k=40, seed=3, presence_penalty=1.0),
    stop=("END",),
)

PLAIN = BackendRequest(
    model="claude-test", messages=(Message(Role.USER, "Hi"),), max_tokens=5, sampling=Sampling()
)


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def _start(input_tokens: int = 25) -> str:
    usage = {"input_tokens": input_tokens, "output_tokens": 1}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "usage": usage}
    return _event("message_start", {"type": "message_start", "message": message}) + _event(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )


def _text(text: str) -> str:
    delta = {"type": "text_delta", "text": text}
    return _event(
        "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
    )


def _end(stop_reason: str | None = "end_turn", output_tokens: int = 2) -> str:
    delta = {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}}
    return (
        _event("content_block_stop", {"type": "content_block_stop", "index": 0})
        + _event("message_delta", {**delta, "usage": {"output_tokens": output_tokens}})
        + _event("message_stop", {"type": "message_stop"})
    )


def _error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _error(kind: str, message: str) -> str:
    return _event("error", _error_body(kind, message))


PAST_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"
"""A ``Retry-After`` date already gone: no wait."""
PING = _event("ping", {"type": "ping"})
STREAM = _start() + PING + _text("Hel") + PING + _text("lo") + _end()

Handler = Callable[[httpx.Request], httpx.Response]


def _sse(body: str, seen: list[httpx.Request] | None = None) -> Handler:
    """Answers every request with ``body`` as an event stream; records them in ``seen``."""

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    return handler


def _backend(handler: Handler, api_key_env: str | None = None) -> AnthropicBackend:
    config = AnthropicBackendConfig(base_url="http://upstream.test/v1", api_key_env=api_key_env)
    return AnthropicBackend("claude", config, transport=httpx.MockTransport(handler))


async def _collect(
    backend: AnthropicBackend, request: BackendRequest = PLAIN, received: list[Delta] | None = None
) -> list[Delta]:
    """Every delta, kept in ``received`` as they arrive so a failure keeps them."""
    received = [] if received is None else received
    async for delta in backend.stream(request):
        received.append(delta)
    return received


async def test_sends_a_streaming_messages_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", "sk-ant-secret")
    seen: list[httpx.Request] = []

    deltas = await _collect(_backend(_sse(STREAM, seen), "TEST_ANTHROPIC_KEY"), REQUEST)

    assert (seen[0].method, str(seen[0].url)) == ("POST", "http://upstream.test/v1/messages")
    assert json.loads(seen[0].content) == {
        "model": "claude-test",
        "max_tokens": 7,
        "stream": True,
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Tell me a story."},
        ],
        "system": "Be brief.\n\nAnswer in English.",
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 40,
        "stop_sequences": ["END"],
    }
    headers = seen[0].headers
    assert headers["x-api-key"] == "sk-ant-secret"
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "text/event-stream"
    assert "authorization" not in headers
    assert deltas == [
        Delta(usage=Usage(25, 0)),  # the prompt tokens, known from message_start
        Delta(text="Hel", token_count=1),
        Delta(text="lo", token_count=1),
        Delta(finish_reason=FinishReason.STOP, usage=Usage(25, 2)),
    ]


async def test_without_a_key_no_key_header_and_no_unset_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TEST_ANTHROPIC_KEY", raising=False)
    seen: list[httpx.Request] = []

    await _collect(_backend(_sse(STREAM, seen), "TEST_ANTHROPIC_KEY"))

    assert "x-api-key" not in seen[0].headers
    assert json.loads(seen[0].content) == {
        "model": "claude-test",
        "max_tokens": 5,
        "stream": True,
        "messages": [{"role": "user", "content": "Hi"}],
    }


@pytest.mark.parametrize(
    ("continuation", "prefill", "sent", "received"),
    [
        ("Once upon", "Once upon", [" a", " time"], [" a", " time"]),
        ("Once upon ", "Once upon", [" a", " time"], ["a", " time"]),
        ("Once upon ", "Once upon", ["a", " time"], ["a", " time"]),
        ("Line\n\n", "Line", ["\n\nNext", " one"], ["Next", " one"]),
        ("Line\n\n", "Line", ["\nNext"], ["\nNext"]),
        ("Line\n ", "Line", ["\n ", "Next"], ["", "Next"]),
        ("  ", None, ["  Hi"], ["Hi"]),
    ],
)
async def test_a_continuation_is_a_prefill_without_trailing_whitespace(
    continuation: str, prefill: str | None, sent: list[str], received: list[str]
) -> None:
    seen: list[httpx.Request] = []
    body = _start() + "".join(_text(text) for text in sent) + _end()

    deltas = await _collect(_backend(_sse(body, seen)), replace(PLAIN, continuation=continuation))

    messages = json.loads(seen[0].content)["messages"]
    expected = [{"role": "user", "content": "Hi"}]
    if prefill is not None:
        expected.append({"role": "assistant", "content": prefill})
    assert messages == expected
    assert [d.text for d in deltas[1:-1]] == received  # after the usage, before the end
    assert [d.token_count for d in deltas[1:-1]] == [1] * len(sent)


async def test_events_the_backend_does_not_use_are_skipped() -> None:
    thinking = {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta"}}
    body = (
        _start(input_tokens=11)
        + _event("content_block_delta", thinking)
        + _text("")
        + _event("future_event", {"type": "future_event", "x": 1})
        + _text("Hi")
        + _end("max_tokens", output_tokens=5)
    )

    assert await _collect(_backend(_sse(body))) == [
        Delta(usage=Usage(11, 0)),
        Delta(text="Hi", token_count=1),
        Delta(finish_reason=FinishReason.LENGTH, usage=Usage(11, 5)),
    ]


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", FinishReason.STOP),
        ("max_tokens", FinishReason.LENGTH),
        ("stop_sequence", FinishReason.STOP_SEQUENCE),
        ("refusal", FinishReason.CONTENT_FILTER),
        ("pause_turn", FinishReason.STOP),
        (None, FinishReason.STOP),
    ],
)
async def test_stop_reasons(stop_reason: str | None, finish: FinishReason) -> None:
    deltas = await _collect(_backend(_sse(_start() + _text("x") + _end(stop_reason))))

    assert deltas[-1] == Delta(finish_reason=finish, usage=Usage(25, 2))


@pytest.mark.parametrize(
    ("kind", "retryable"),
    [
        ("overloaded_error", True),
        ("api_error", True),
        ("rate_limit_error", True),
        ("invalid_request_error", False),
        ("permission_error", False),
    ],
)
async def test_an_error_event_mid_stream(kind: str, retryable: bool) -> None:
    body = _start() + _text("Hel") + _error(kind, "Overloaded") + _text("never")
    received: list[Delta] = []

    with pytest.raises(BackendError) as caught:
        await _collect(_backend(_sse(body)), received=received)

    assert received == [Delta(usage=Usage(25, 0)), Delta(text="Hel", token_count=1)]
    assert type(caught.value) is BackendError
    detail = "upstream reported an error mid-stream: Overloaded"
    assert caught.value.message == f"backend 'claude': {detail}"
    assert caught.value.retryable is retryable


@pytest.mark.parametrize(
    ("status", "body", "retry_after", "message", "seconds"),
    [
        (529, _error_body("overloaded_error", "Overloaded"), "4", "Overloaded", 4.0),
        (429, _error_body("rate_limit_error", "Slow"), PAST_DATE, "Slow", 0.0),
        (401, {"error": {"message": "invalid x-api-key"}}, None, "invalid x-api-key", None),
    ],
)
async def test_an_error_status(
    status: int, body: dict[str, Any], retry_after: str | None, message: str, seconds: float | None
) -> None:
    headers = {"retry-after": retry_after} if retry_after else {}
    backend = _backend(lambda request: httpx.Response(status, json=body, headers=headers))

    with pytest.raises(BackendStatusError) as caught:
        await _collect(backend)

    assert caught.value.message == f"backend 'claude': HTTP {status}: {message}"
    assert caught.value.retry_after == seconds
    assert caught.value.retryable is (status != 401)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_start() + _text("Hel"), id="cut-after-a-delta"),
        pytest.param(
            _start() + _text("Hel") + _end().split("event: message_stop")[0],
            id="cut-before-stop",
        ),
        pytest.param(STREAM[: STREAM.index("message_stop") + 10], id="cut-inside-stop"),
        pytest.param("", id="empty"),
    ],
)
async def test_a_body_that_ends_before_message_stop(body: str) -> None:
    with pytest.raises(BackendProtocolError) as caught:
        await _collect(_backend(_sse(body)))

    assert caught.value.message == "backend 'claude': upstream closed the stream before it ended"
    assert caught.value.retryable is True


@pytest.mark.parametrize("data", ["{oops", '"text"', "[]"])
async def test_a_malformed_event(data: str) -> None:
    body = _start() + f"event: content_block_delta\ndata: {data}\n\n"

    with pytest.raises(BackendProtocolError) as caught:
        await _collect(_backend(_sse(body)))

    assert caught.value.message == f"backend 'claude': malformed stream event: {data!r}"


def test_build_backends_builds_the_anthropic_backend() -> None:
    config = Config(
        backends={"claude": {"kind": "anthropic", "api_key_env": None}},
        routes={"r": {"targets": [{"backend": "claude", "model": "claude-test"}]}},
        default_route="r",
    )

    backend = build_backends(config)["claude"]

    assert isinstance(backend, AnthropicBackend)
    assert (backend.name, backend.kind, backend.supports_json) == ("claude", "anthropic", True)
    assert backend.max_concurrency == 64


class AnthropicUpstream:
    """A minimal Messages API on a real loopback socket.

    Each request gets ``tokens`` text deltas (" t0", " t1", ...) written as
    fast as the socket takes them, then ``message_stop``; the connection closes.

    Attributes:
        bodies: The JSON bodies received, in order.
        sent: Text deltas written to the socket over all requests.
        closed: Set when a connection ended (by the client, or after the stream).
    """

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens
        self.bodies: list[dict[str, Any]] = []
        self.sent = 0
        self.closed = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        """Starts listening; returns the ``/v1`` base URL."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1"

    async def stop(self) -> None:
        """Stops listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
            length = int(head.split("content-length:")[1].split("\r\n")[0])
            self.bodies.append(json.loads(await reader.readexactly(length)))
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
            )
            writer.write((_start(3) + PING).encode())
            for index in range(self.tokens):
                writer.write(_text(f" t{index}").encode())
                await writer.drain()
                self.sent += 1
            writer.write(_end(output_tokens=self.tokens).encode())
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            self.closed.set()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@pytest.fixture
async def upstream() -> AsyncIterator[AnthropicUpstream]:
    upstream = AnthropicUpstream(tokens=20000)
    yield upstream
    await upstream.stop()


def _loopback(base_url: str) -> AnthropicBackend:
    return AnthropicBackend("claude", AnthropicBackendConfig(base_url=base_url, api_key_env=None))


async def test_streams_every_token_from_a_real_socket(upstream: AnthropicUpstream) -> None:
    upstream.tokens = 50
    backend = _loopback(await upstream.start())

    deltas = await _collect(backend, replace(PLAIN, continuation="Go: "))
    await backend.close()

    assert "".join(d.text for d in deltas) == "t0" + "".join(f" t{i}" for i in range(1, 50))
    assert deltas[-1] == Delta(finish_reason=FinishReason.STOP, usage=Usage(3, 50))
    assert upstream.bodies[0]["messages"][-1] == {"role": "assistant", "content": "Go:"}


async def test_closing_the_stream_early_closes_the_connection(upstream: AnthropicUpstream) -> None:
    backend = _loopback(await upstream.start())
    stream = backend.stream(PLAIN)
    usage = await anext(stream)  # the prompt tokens, from message_start
    first = [await anext(stream) for _ in range(3)]

    await stream.aclose()

    async with asyncio.timeout(5):
        await upstream.closed.wait()
    await backend.close()
    assert usage.usage is not None
    assert [d.text for d in first] == [" t0", " t1", " t2"]
    # TCP stopped the upstream long before the end: only what the socket buffers held was written.
    assert upstream.sent < upstream.tokens
