"""An OpenAI-compatible ``/v1/chat/completions`` backend over httpx and SSE.

Works with OpenAI and the servers that copy its API (vLLM, llama.cpp's
server, llama-cpp-python's server, Ollama, LM Studio, TGI). The response body
is read only as fast as deltas are pulled, so a slow consumer leaves bytes in
the socket and TCP pushes back on the provider; closing the stream closes the
connection, which is how the provider learns to stop.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from llmrouter_server.backends.base import BackendRequest, Delta
from llmrouter_server.backends.sse import read_events
from llmrouter_server.config import OpenAIBackendConfig
from llmrouter_server.errors import (
    BackendConnectError,
    BackendError,
    BackendStatusError,
    BackendTimeout,
)
from llmrouter_server.values import FinishReason, Usage

_FINISH_REASONS = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "content_filter": FinishReason.CONTENT_FILTER,
}


class OpenAIBackend:
    """Streams chat completions from an OpenAI-compatible HTTP server."""

    kind = "openai"
    supports_json = True

    def __init__(
        self,
        name: str,
        config: OpenAIBackendConfig,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Builds the connection pool.

        Args:
            name: The configured backend name.
            config: Where the server is and how long to wait for it.
            transport: An httpx transport to use instead of the network (tests).
        """
        self.name = name
        self.max_concurrency = config.max_concurrency
        self._client = httpx.AsyncClient(
            base_url=config.base_url,
            headers=_auth_headers(config.api_key_env),
            timeout=httpx.Timeout(
                config.read_timeout_seconds, connect=config.connect_timeout_seconds
            ),
            transport=transport or _transport(config),
        )

    async def stream(self, request: BackendRequest) -> AsyncGenerator[Delta, None]:
        """Posts the request with ``stream: true`` and yields one delta per SSE event."""
        async with self._response(_payload(request)) as response:
            async for sse in read_events(response.aiter_bytes()):
                if sse.data == "[DONE]":
                    return
                delta = _delta(self.name, sse.data)
                if delta is not None:
                    yield delta

    async def close(self) -> None:
        """Closes the connection pool."""
        await self._client.aclose()

    @asynccontextmanager
    async def _response(self, payload: dict[str, Any]) -> AsyncIterator[httpx.Response]:
        headers = {"Accept": "text/event-stream"}
        try:
            async with self._client.stream(
                "POST", "chat/completions", json=payload, headers=headers
            ) as response:
                await self._check_status(response)
                yield response
        except httpx.TimeoutException as exc:
            raise BackendTimeout(self.name, f"{type(exc).__name__} after no answer") from exc
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise BackendConnectError(self.name, f"{type(exc).__name__}: {exc}") from exc

    async def _check_status(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            kind = response.headers.get("content-type", "").partition(";")[0].strip()
            if kind != "text/event-stream":
                raise BackendError(self.name, f"not an event stream: content-type {kind!r}")
            return
        body = (await response.aread()).decode(errors="replace")
        raise BackendStatusError(
            self.name,
            response.status_code,
            _error_message(body),
            retry_after=_retry_after(response.headers.get("retry-after")),
        )


def _transport(config: OpenAIBackendConfig) -> httpx.AsyncHTTPTransport:
    size = config.receive_buffer_bytes
    # The options apply once the connection is up: the buffer bounds what the
    # kernel holds for us, the clamp bounds the window the upstream may fill.
    options = (
        [
            (socket.SOL_SOCKET, socket.SO_RCVBUF, size),
            (socket.IPPROTO_TCP, socket.TCP_WINDOW_CLAMP, size),
        ]
        if size
        else []
    )
    return httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=config.max_concurrency), socket_options=options
    )


def _auth_headers(api_key_env: str | None) -> dict[str, str]:
    key = os.environ.get(api_key_env) if api_key_env else None
    return {"Authorization": f"Bearer {key}"} if key else {}


def _payload(request: BackendRequest) -> dict[str, Any]:
    sampling = request.sampling
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": _messages(request),
        "max_tokens": request.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    optional = {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,  # an extension most compatible servers accept
        "seed": sampling.seed,
        "presence_penalty": sampling.presence_penalty,
        "frequency_penalty": sampling.frequency_penalty,
        "stop": list(request.stop) or None,
        "response_format": _response_format(request),
    }
    payload.update({key: value for key, value in optional.items() if value is not None})
    return payload


def _messages(request: BackendRequest) -> list[dict[str, str]]:
    messages = [{"role": str(m.role), "content": m.content} for m in request.messages]
    if request.continuation:
        # Servers that support prefill (vLLM, llama.cpp's server, Anthropic-style
        # APIs) continue a trailing assistant message; others answer after it.
        messages.append({"role": "assistant", "content": request.continuation})
    return messages


def _response_format(request: BackendRequest) -> dict[str, Any] | None:
    if not request.json_output:
        return None
    if not request.json_schema:
        return {"type": "json_object"}
    schema = json.loads(request.json_schema)
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


def _delta(backend: str, data: str) -> Delta | None:
    try:
        payload = json.loads(data)
    except json.JSONDecodeError as exc:
        raise BackendError(backend, f"malformed stream event: {data[:200]!r}") from exc
    if "error" in payload:
        raise BackendError(backend, _error_message(data))
    choices = payload.get("choices") or []
    usage = _usage(payload.get("usage"))
    if not choices:
        return Delta(usage=usage) if usage else None
    choice = choices[0]
    text = (choice.get("delta") or {}).get("content") or ""
    reason = choice.get("finish_reason")
    finish = _FINISH_REASONS.get(reason, FinishReason.STOP) if reason else None
    if not text and finish is None and usage is None:
        return None
    return Delta(text=text, token_count=1 if text else 0, finish_reason=finish, usage=usage)


def _usage(raw: dict[str, Any] | None) -> Usage | None:
    if not raw:
        return None
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))


def _error_message(body: str) -> str:
    try:
        error = json.loads(body).get("error")
    except (json.JSONDecodeError, AttributeError):
        return body[:500]
    if isinstance(error, dict):
        return str(error.get("message") or error)[:500]
    return str(error or body)[:500]


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
