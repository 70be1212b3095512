"""What the OpenAI backend sends, and how upstream failures surface to clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from llmrouter_server.backends.base import BackendRequest, Delta
from llmrouter_server.backends.openai import OpenAIBackend
from llmrouter_server.config import OpenAIBackendConfig
from llmrouter_server.errors import (
    BackendConnectError,
    BackendError,
    BackendProtocolError,
    BackendStatusError,
)
from llmrouter_server.values import FinishReason, Message, Role, Sampling, Usage
from tests.backends.upstream import free_port
from tests.helpers import error_info, generate, kinds, loopback_config, serving, start

REQUEST = BackendRequest(
    model="gpt-test",
    messages=(Message(Role.SYSTEM, "Be brief."), Message(Role.USER, "Hi")),
    max_tokens=7,
    sampling=Sampling(temperature=0.5, seed=3),
    stop=("END",),
    json_output=True,
    json_schema='{"type": "object"}',
)

SSE_OK = (
    'data: {"choices": [{"delta": {"role": "assistant"}, "finish_reason": null}]}\n\n'
    'data: {"choices": [{"delta": {"content": "Hel"}, "finish_reason": null}]}\n\n'
    'data: {"choices": [{"delta": {"content": "lo"}, "finish_reason": null}]}\n\n'
    'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\n'
    'data: {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}}\n\n'
    "data: [DONE]\n\n"
)


def _backend(handler: httpx.MockTransport, api_key_env: str | None = None) -> OpenAIBackend:
    config = OpenAIBackendConfig(base_url="http://upstream.test/v1", api_key_env=api_key_env)
    return OpenAIBackend("remote", config, transport=handler)


def _sse(body: str) -> httpx.Response:
    return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})


async def _collect(
    stream: AsyncIterator[Delta], received: list[Delta] | None = None
) -> list[Delta]:
    """Every delta, kept in ``received`` as they arrive so a failure keeps them."""
    received = [] if received is None else received
    async for delta in stream:
        received.append(delta)
    return received


async def test_sends_a_streaming_chat_completion_request() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _sse(SSE_OK)

    deltas = await _collect(_backend(httpx.MockTransport(handler)).stream(REQUEST))

    assert seen[0].method == "POST"
    assert str(seen[0].url) == "http://upstream.test/v1/chat/completions"
    assert json.loads(seen[0].content) == {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
        "max_tokens": 7,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.5,
        "seed": 3,
        "stop": ["END"],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": {"type": "object"}},
        },
    }
    assert deltas == [
        Delta(text="Hel", token_count=1),
        Delta(text="lo", token_count=1),
        Delta(finish_reason=FinishReason.STOP, usage=Usage(9, 2)),
    ]


async def test_api_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_UPSTREAM_KEY", "sk-secret")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _sse("data: [DONE]\n\n")

    await _collect(_backend(httpx.MockTransport(handler), "TEST_UPSTREAM_KEY").stream(REQUEST))

    assert seen[0].headers["authorization"] == "Bearer sk-secret"


@pytest.mark.parametrize(
    ("status", "retryable"), [(429, True), (500, True), (503, True), (400, False), (401, False)]
)
async def test_error_status_raises_backend_status_error(status: int, retryable: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"error": {"message": f"upstream says {status}"}}
        return httpx.Response(status, json=body, headers={"retry-after": "2"})

    with pytest.raises(BackendStatusError) as caught:
        await _collect(_backend(httpx.MockTransport(handler)).stream(REQUEST))

    assert caught.value.status == status
    assert caught.value.retryable is retryable
    assert caught.value.retry_after == 2.0
    assert f"HTTP {status}: upstream says {status}" in caught.value.message


async def test_a_continuation_is_a_trailing_assistant_message() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _sse(SSE_OK)

    request = replace(REQUEST, json_schema="", continuation="Once upon ")
    await _collect(_backend(httpx.MockTransport(handler)).stream(request))

    body = json.loads(seen[0].content)
    assert body["messages"][-1] == {"role": "assistant", "content": "Once upon "}
    assert body["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(
    ("body", "deltas"),
    [
        pytest.param(
            'data: {"choices": [{"delta": {"content": "Hi"}, "finish_reason": "length"}]}\n\n',
            [Delta(text="Hi", token_count=1), Delta(finish_reason=FinishReason.LENGTH)],
            id="finish-without-done",
        ),
        pytest.param(
            'data: {"choices": [{"delta": {"content": "Hi"}, "finish_reason": null}]}\n\n'
            'data: {"choices": [{"delta": {}, "finish_reason": "content_filter"}]}\n\n'
            "data: [DONE]\n\n",
            [Delta(text="Hi", token_count=1), Delta(finish_reason=FinishReason.CONTENT_FILTER)],
            id="finish-without-usage",
        ),
        pytest.param(
            'data: {"choices": [{"delta": {"content": "Hi"}, "finish_reason": "eos"}]}\n\n'
            "data: [DONE]\n\n",
            [Delta(text="Hi", token_count=1), Delta(finish_reason=FinishReason.STOP)],
            id="unknown-finish-reason",
        ),
        pytest.param(
            'data: {"choices": [{"delta": {"content": "Hi"}}]}\n\ndata: [DONE]\n\n',
            [Delta(text="Hi", token_count=1)],
            id="done-without-finish",
        ),
    ],
)
async def test_how_a_stream_may_end(body: str, deltas: list[Delta]) -> None:
    backend = _backend(httpx.MockTransport(lambda request: _sse(body)))

    assert await _collect(backend.stream(REQUEST)) == deltas


async def test_a_body_that_ends_before_a_finish_or_done_is_a_protocol_error() -> None:
    body = 'data: {"choices": [{"delta": {"content": "Hel"}, "finish_reason": null}]}\n\n'
    backend = _backend(httpx.MockTransport(lambda request: _sse(body)))
    received: list[Delta] = []

    with pytest.raises(BackendProtocolError) as caught:
        await _collect(backend.stream(REQUEST), received)

    assert received == [Delta(text="Hel", token_count=1)]
    assert caught.value.message == "backend 'remote': upstream closed the stream before it ended"
    assert caught.value.retryable is True


async def test_an_error_event_mid_stream_is_retryable() -> None:
    body = (
        'data: {"choices": [{"delta": {"content": "Hel"}, "finish_reason": null}]}\n\n'
        'data: {"error": {"message": "The server had an error", "type": "server_error"}}\n\n'
    )
    backend = _backend(httpx.MockTransport(lambda request: _sse(body)))

    with pytest.raises(BackendError) as caught:
        await _collect(backend.stream(REQUEST))

    assert type(caught.value) is BackendError
    assert caught.value.message == (
        "backend 'remote': upstream reported an error mid-stream: The server had an error"
    )
    assert caught.value.retryable is True


@pytest.mark.parametrize("data", ["{not json", "[1]", '{"choices": "none"}', '{"choices": [3]}'])
async def test_malformed_event_raises_protocol_error(data: str) -> None:
    backend = _backend(httpx.MockTransport(lambda request: _sse(f"data: {data}\n\n")))

    with pytest.raises(BackendProtocolError) as caught:
        await _collect(backend.stream(REQUEST))

    assert caught.value.message == f"backend 'remote': malformed stream event: {data!r}"


async def test_a_response_that_is_not_an_event_stream_raises_protocol_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"choices": []})

    with pytest.raises(BackendProtocolError) as caught:
        await _collect(_backend(httpx.MockTransport(handler)).stream(REQUEST))

    assert caught.value.message == (
        "backend 'remote': answered with content-type 'application/json', not an event stream"
    )


async def test_refused_connection_raises_connect_error() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    backend = OpenAIBackend("down", OpenAIBackendConfig(base_url=base_url, api_key_env=None))

    with pytest.raises(BackendConnectError) as caught:
        await _collect(backend.stream(REQUEST))
    await backend.close()

    assert caught.value.message == (
        f"backend 'down': could not connect to {base_url}: connection refused"
    )


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("All connection attempts failed"),
        httpx.ConnectTimeout("timed out"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("[Errno 104] Connection reset by peer"),
    ],
)
async def test_no_message_names_an_httpx_exception(error: httpx.HTTPError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(BackendError) as caught:
        await _collect(_backend(httpx.MockTransport(handler)).stream(REQUEST))

    assert str(error) not in caught.value.message
    assert type(error).__name__ not in caught.value.message
    assert "httpx" not in caught.value.message


async def test_upstream_429_reaches_the_client_as_resource_exhausted_with_retry_info() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429, json={"error": {"message": "slow down"}}, headers={"retry-after": "3"}
        )

    backend = _backend(httpx.MockTransport(handler))
    config = loopback_config(
        backends={"remote": {"kind": "openai", "api_key_env": None}},
        routes={"remote-model": {"targets": [{"backend": "remote", "model": "m"}]}},
        default_route="remote-model",
    )
    async with serving(config, {"remote": backend}) as served:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await generate(served.stub, start())

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "HTTP 429: slow down" in caught.value.details()
    assert error_info(caught.value).metadata["backend"] == "remote"
    status = rpc_status.from_call(caught.value)  # type: ignore[arg-type]
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert any(detail.Unpack(retry) for detail in status.details)
    assert retry.retry_delay.seconds == 3


async def test_unreachable_upstream_is_unavailable_with_the_offset() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    config = loopback_config(
        backends={"down": {"kind": "openai", "base_url": base_url, "api_key_env": None}},
        routes={"down-model": {"targets": [{"backend": "down", "model": "m"}], "max_attempts": 1}},
        default_route="down-model",
    )
    events: list[Any] = []
    async with serving(config) as served:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _generate_into(served.stub, events)

    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "backend 'down'" in caught.value.details()
    assert f"could not connect to {base_url}: connection refused" in caught.value.details()
    info = error_info(caught.value)
    assert info.reason == "BACKEND_CONNECT"
    assert kinds(events)[0] == "started"
    assert info.metadata["offset"] == str(len(events))


async def _generate_into(stub: svc_grpc.RouterServiceStub, events: list[Any]) -> None:
    """Runs one Generate call, keeping its events as they arrive (so a failure keeps them)."""
    async for response in stub.Generate(iter([start()])):
        events.append(response.event)  # noqa: PERF401 (kept as they come, for the failure)
