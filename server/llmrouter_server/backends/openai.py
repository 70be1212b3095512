"""An OpenAI-compatible ``/v1/chat/completions`` backend over SSE.

Works with OpenAI and the servers that copy its API (vLLM, llama.cpp's
server, llama-cpp-python's server, Ollama, LM Studio, TGI). The connection
pool, the streaming POST and the wording of failures are shared with the
other HTTP providers (``backends/http.py``); this module owns the request
body and the reading of chat completion chunks.

The body is read only as fast as deltas are pulled, so a slow consumer leaves
bytes in the socket and TCP pushes back on the provider; closing the stream
closes the connection, which is how the provider learns to stop.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from llmrouter_server.backends.base import BackendRequest, Delta
from llmrouter_server.backends.http import (
    EventStreamClient,
    configured_api_key,
)
from llmrouter_server.backends.http_errors import (
    ended_early,
    error_text,
    malformed_event,
    mid_stream_error,
    parse_event,
)
from llmrouter_server.backends.sse import read_to_end
from llmrouter_server.config import OpenAIBackendConfig
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

        Raises:
            ConfigError: ``api_key_file`` is set and cannot be read.
        """
        self.name = name
        self.max_concurrency = config.max_concurrency
        key = configured_api_key(name, config)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = EventStreamClient(name, config, headers, transport)

    async def stream(self, request: BackendRequest) -> AsyncGenerator[Delta, None]:
        """Posts the request with ``stream: true``; yields a delta per content chunk.

        The finish reason and the usage (which OpenAI sends in a chunk of its
        own after the finish) come together on the last delta. The stream ends
        at ``data: [DONE]``, or at the end of the body after a finish reason
        (some servers omit ``[DONE]``); a body that ends before both is an error.
        """
        finish: FinishReason | None = None
        usage: Usage | None = None
        done = False
        async with self._http.post(
            "chat/completions", _payload(request), request.trace_headers
        ) as batches:
            async for batch in batches:
                texts: list[str] = []
                try:
                    for sse in batch:
                        if sse.data == "[DONE]":
                            done = True
                            break
                        text, chunk_finish, chunk_usage = _chunk(self.name, sse.data)
                        finish, usage = chunk_finish or finish, chunk_usage or usage
                        if text:
                            texts.append(text)
                finally:
                    # Also before a bad event's error: the text before it is kept.
                    for delta in _deltas(texts, merge=request.merge_reads):
                        yield delta
                if done:
                    await read_to_end(batches)
                    break
            if not done and finish is None:
                raise ended_early(self.name)
        if finish is not None or usage is not None:
            yield Delta(finish_reason=finish, usage=usage)

    async def close(self) -> None:
        """Closes the connection pool."""
        await self._http.aclose()


def _deltas(texts: list[str], *, merge: bool) -> list[Delta]:
    """The deltas of one network read's texts: one each, or one for all when ``merge``
    (the caller coalesces anyway, so the per-delta work is spared)."""
    if merge and len(texts) > 1:
        return [Delta("".join(texts), len(texts))]
    return [Delta(text, 1) for text in texts]


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


def _chunk(backend: str, data: str) -> tuple[str, FinishReason | None, Usage | None]:
    """What one ``chat.completion.chunk`` carries: its text, finish reason and usage."""
    payload = parse_event(backend, data)
    if "error" in payload:
        message = error_text(payload) or "no message"
        raise mid_stream_error(backend, message, retryable=True)
    choices = payload.get("choices") or [{}]
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise malformed_event(backend, data)
    choice = choices[0]
    delta = choice.get("delta")
    text = delta.get("content") if isinstance(delta, dict) else None
    reason = choice.get("finish_reason")
    raw_usage = payload.get("usage")
    return (
        text if isinstance(text, str) else "",
        _FINISH_REASONS.get(reason, FinishReason.STOP) if reason else None,
        _usage(raw_usage) if raw_usage else None,
    )


def _usage(raw: object) -> Usage | None:
    if not isinstance(raw, dict) or not raw:
        return None
    return Usage(_count(raw.get("prompt_tokens")), _count(raw.get("completion_tokens")))


def _count(value: object) -> int:
    return value if isinstance(value, int) else 0
