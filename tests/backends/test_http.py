"""The HTTP layer both providers share: the streaming POST and the one error classification."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from llmrouter_server.backends.http import (
    EventStreamClient,
    api_key,
    build_client,
)
from llmrouter_server.backends.http_errors import (
    error_message,
    parse_event,
    retry_after_seconds,
)
from llmrouter_server.backends.sse import ServerSentEvent
from llmrouter_server.config import AnthropicBackendConfig, OpenAIBackendConfig
from llmrouter_server.errors import (
    BackendConnectError,
    BackendError,
    BackendProtocolError,
    BackendStatusError,
    BackendTimeout,
)
from tests.backends.upstream import free_port

BASE_URL = "http://upstream.test/v1"
HTTPX_NAMES = ("httpx", "httpcore", "Error", "Timeout", "Exception", "h11")
"""Words of a library's exception class or module that no message may contain."""

Handler = Callable[[httpx.Request], httpx.Response]


class BrokenStream(httpx.AsyncByteStream):
    """A response body that yields some bytes, then fails with ``error``."""

    def __init__(self, body: bytes, error: Exception) -> None:
        self.body = body
        self.error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.body
        raise self.error


def _client(handler: Handler, base_url: str = BASE_URL) -> EventStreamClient:
    config = OpenAIBackendConfig(base_url=base_url, api_key_env=None)
    return EventStreamClient("up", config, {"x-key": "k"}, httpx.MockTransport(handler))


async def _events(
    client: EventStreamClient, received: list[ServerSentEvent] | None = None
) -> list[ServerSentEvent]:
    """Posts and reads every event into ``received``, which keeps them if the body fails."""
    received = [] if received is None else received
    async with client.post("path", {"a": 1}) as batches:
        async for batch in batches:
            received.extend(batch)
    return received


async def _failure(handler: Handler) -> BackendError:
    with pytest.raises(BackendError) as caught:
        await _events(_client(handler))
    assert_in_our_words(caught.value)
    return caught.value


def assert_in_our_words(error: BackendError) -> None:
    """Checks that no library's exception class or module shows in the message."""
    assert not any(name in error.message for name in HTTPX_NAMES), error.message


def _sse(body: bytes | httpx.AsyncByteStream) -> httpx.Response:
    headers = {"content-type": "text/event-stream; charset=utf-8"}
    if isinstance(body, bytes):
        return httpx.Response(200, content=body, headers=headers)
    return httpx.Response(200, stream=body, headers=headers)


def _raise(error: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    return handler


async def test_posts_json_asking_for_an_event_stream_and_yields_its_events() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _sse(b"event: one\ndata: 1\n\ndata: 2\n\n")

    events = await _events(_client(handler))

    assert events == [ServerSentEvent("1", "one"), ServerSentEvent("2")]
    assert str(seen[0].url) == "http://upstream.test/v1/path"
    assert seen[0].content == b'{"a":1}'
    assert seen[0].headers["accept"] == "text/event-stream"
    assert seen[0].headers["content-type"] == "application/json"
    assert seen[0].headers["x-key"] == "k"


@pytest.mark.parametrize(("value", "key"), [("sk-1", "sk-1"), ("", None), (None, None)])
def test_api_key_comes_from_the_named_variable(
    monkeypatch: pytest.MonkeyPatch, value: str | None, key: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("TEST_HTTP_KEY", raising=False)
    else:
        monkeypatch.setenv("TEST_HTTP_KEY", value)

    assert api_key("TEST_HTTP_KEY") == key
    assert api_key(None) is None


async def test_the_client_takes_its_timeouts_and_base_url_from_the_config() -> None:
    config = AnthropicBackendConfig(
        base_url="http://a.test/v1", connect_timeout_seconds=2, read_timeout_seconds=9
    )

    async with build_client(config, {"h": "v"}) as client:
        assert client.base_url == "http://a.test/v1/"
        assert client.timeout == httpx.Timeout(9.0, connect=2.0)
        assert client.headers["h"] == "v"


@pytest.mark.parametrize(
    ("error", "kind", "detail"),
    [
        (httpx.ConnectTimeout("t"), BackendTimeout, "no connection within 5.0 s"),
        (httpx.ReadTimeout("t"), BackendTimeout, "no data for 60.0 s"),
        (httpx.WriteTimeout("t"), BackendTimeout, "request not sent within 60.0 s"),
        (httpx.PoolTimeout("t"), BackendTimeout, "no free connection within 60.0 s"),
        (
            httpx.ConnectError("All connection attempts failed"),
            BackendConnectError,
            f"could not connect to {BASE_URL}: unreachable",
        ),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            BackendConnectError,
            "upstream closed the connection before answering",
        ),
        (
            httpx.WriteError("w"),
            BackendConnectError,
            "upstream closed the connection before answering",
        ),
        (httpx.UnsupportedProtocol("u"), BackendConnectError, f"the request to {BASE_URL} failed"),
    ],
)
async def test_failures_before_an_answer(
    error: Exception, kind: type[BackendError], detail: str
) -> None:
    failure = await _failure(_raise(error))

    assert type(failure) is kind
    assert failure.message == f"backend 'up': {detail}"
    assert failure.retryable is True


async def test_a_connect_error_names_the_os_reason() -> None:
    error = httpx.ConnectError("[Errno -2] Name or service not known")
    error.__cause__ = socket.gaierror(-2, "Name or service not known")

    failure = await _failure(_raise(error))

    assert failure.detail == f"could not connect to {BASE_URL}: host name not found"


async def test_a_refused_connection_on_a_real_socket() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    client = EventStreamClient("up", OpenAIBackendConfig(base_url=base_url, api_key_env=None), {})

    with pytest.raises(BackendConnectError) as caught:
        await _events(client)
    await client.aclose()

    assert (
        caught.value.message == f"backend 'up': could not connect to {base_url}: connection refused"
    )


@pytest.mark.parametrize(
    ("error", "kind", "detail"),
    [
        (httpx.ReadError("r"), BackendProtocolError, "upstream closed the stream before it ended"),
        (
            httpx.RemoteProtocolError("peer closed connection"),
            BackendProtocolError,
            "upstream closed the stream before it ended",
        ),
        (httpx.ReadTimeout("t"), BackendTimeout, "no data for 60.0 s"),
        (httpx.DecodingError("d"), BackendProtocolError, "the response body could not be decoded"),
    ],
)
async def test_failures_mid_body(error: Exception, kind: type[BackendError], detail: str) -> None:
    received: list[ServerSentEvent] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return _sse(BrokenStream(b"data: 1\n\ndata: 2", error))

    with pytest.raises(kind) as caught:
        await _events(_client(handler), received)

    assert received == [ServerSentEvent("1")]
    assert caught.value.message == f"backend 'up': {detail}"
    assert_in_our_words(caught.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"error": {"message": "Rate limit reached", "type": "tokens"}}', "Rate limit reached"),
        (
            '{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}',
            "Overloaded",
        ),
        ('{"error": "model not loaded"}', "model not loaded"),
        ('{"detail": "nope"}', '{"detail": "nope"}'),
        ("<html>" + "x" * 600, "<html>" + "x" * 494),
        ("", "Service Unavailable"),
    ],
)
async def test_an_error_status_carries_the_providers_message(body: str, message: str) -> None:
    failure = await _failure(lambda request: httpx.Response(503, text=body))

    assert isinstance(failure, BackendStatusError)
    assert failure.message == f"backend 'up': HTTP 503: {message}"
    assert (failure.status, failure.retryable, failure.retry_after) == (503, True, None)


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (408, True), (429, True)])
async def test_retry_after_reaches_the_status_error(status: int, retryable: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, json={"error": {"message": "m"}}, headers={"retry-after": "7"}
        )

    failure = await _failure(handler)

    assert isinstance(failure, BackendStatusError)
    assert (failure.status, failure.retryable, failure.retry_after) == (status, retryable, 7.0)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("soon", None),
        ("inf", None),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    ],
)
def test_retry_after_in_seconds_or_as_an_http_date(
    value: str | None, seconds: float | None
) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT

    assert retry_after_seconds(value, now=now) == seconds


@pytest.mark.parametrize(
    ("content_type", "detail"),
    [
        ("text/html", "answered with content-type 'text/html', not an event stream"),
        ("application/json", "answered with content-type 'application/json', not an event stream"),
        (None, "answered with content-type '', not an event stream"),
    ],
)
async def test_an_answer_that_is_not_an_event_stream(content_type: str | None, detail: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    failure = await _failure(lambda request: httpx.Response(200, content=b"<p>", headers=headers))

    assert isinstance(failure, BackendProtocolError)
    assert failure.message == f"backend 'up': {detail}"


@pytest.mark.parametrize(
    ("data", "quoted"),
    [("{not json", "'{not json'"), ("[1, 2]", "'[1, 2]'"), ("x" * 300, repr("x" * 200))],
)
def test_a_malformed_event_is_quoted(data: str, quoted: str) -> None:
    with pytest.raises(BackendProtocolError) as caught:
        parse_event("up", data)

    assert caught.value.message == f"backend 'up': malformed stream event: {quoted}"


def test_error_message_falls_back_to_the_body() -> None:
    assert error_message('{"error": {"message": "bad key"}}') == "bad key"
    assert error_message('{"error": {"code": 5}}') == '{"error": {"code": 5}}'
    assert error_message("[]") == "[]"


async def test_a_chunked_body_cut_short_on_a_real_socket() -> None:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    async with _raw_server(head + b"9\r\ndata: 1\n\n\r\n") as base_url:
        client = EventStreamClient(
            "up", OpenAIBackendConfig(base_url=base_url, api_key_env=None), {}
        )
        received: list[ServerSentEvent] = []
        with pytest.raises(BackendProtocolError) as caught:
            await _events(client, received)
        await client.aclose()

    assert received == [ServerSentEvent("1")]
    assert caught.value.message == "backend 'up': upstream closed the stream before it ended"


@contextlib.asynccontextmanager
async def _raw_server(answer: bytes) -> AsyncIterator[str]:
    """A loopback server that reads a request head, writes ``answer`` and closes."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    finally:
        server.close()
        await server.wait_closed()
