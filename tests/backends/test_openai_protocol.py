"""What the OpenAI backend sends, and how upstream failures surface to clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from llmrouter_server.backends.base import BackendRequest, Delta
from llmrouter_server.backends.openai import OpenAIBackend
from llmrouter_server.config import OpenAIBackendConfig
from llmrouter_server.errors import BackendConnectError, BackendError, BackendStatusError
from llmrouter_server.values import FinishReason, Usage
from llmrouter_server.values import Message, Role, Sampling
from tests.backends.upstream import free_port
from tests.helpers import error_info, generate, loopback_config, serving, start

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


async def _collect(stream: AsyncIterator[Delta]) -> list[Delta]:
    return [delta async for delta in stream]


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
        Delta(finish_reason=FinishReason.STOP),
        Delta(usage=Usage(9, 2)),
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


async def test_malformed_event_raises_backend_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return _sse("data: {not json\n\n")

    with pytest.raises(BackendError, match="malformed stream event"):
        await _collect(_backend(httpx.MockTransport(handler)).stream(REQUEST))


async def test_a_response_that_is_not_an_event_stream_raises_backend_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"choices": []})

    with pytest.raises(BackendError, match="not an event stream"):
        await _collect(_backend(httpx.MockTransport(handler)).stream(REQUEST))


async def test_refused_connection_raises_connect_error() -> None:
    config = OpenAIBackendConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", api_key_env=None)

    with pytest.raises(BackendConnectError):
        await _collect(OpenAIBackend("down", config).stream(REQUEST))


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
    config = loopback_config(
        backends={
            "down": {
                "kind": "openai",
                "base_url": f"http://127.0.0.1:{free_port()}/v1",
                "api_key_env": None,
            }
        },
        routes={"down-model": {"targets": [{"backend": "down", "model": "m"}]}},
        default_route="down-model",
    )
    async with serving(config) as served:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await generate(served.stub, start())

    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "backend 'down'" in caught.value.details()
    info = error_info(caught.value)
    assert info.reason == "BACKEND_CONNECT"
    assert info.metadata["offset"] == "1"
