"""The Anthropic Messages API backend (``POST /v1/messages``) over SSE.

The connection pool, the streaming POST and the wording of failures are
shared with the other HTTP providers (``backends/http.py``); this module owns
the request body and the reading of the Messages stream::

    message_start  content_block_start  ping  content_block_delta ...
    content_block_stop  message_delta  message_stop

System messages go in the top-level ``system`` field. A continuation is sent
as a trailing assistant turn, which Anthropic continues (prefill); since it
rejects a final assistant turn ending in whitespace, that whitespace is cut
from the turn and from the start of the model's first text, so the output
joins the continuation without losing or doubling it.

JSON output has no parameter in the Messages API that this backend relies
on, so it is asked for by an instruction: a system paragraph asking for one
JSON value and nothing else, with the schema when there is one. When the
schema requires an object, the answer is also prefilled with ``{`` (and the
``{`` is emitted as the start of the first text), which keeps the model from
a preamble or a code fence; with no schema, or one that allows other types,
nothing is prefilled, since ``{`` would rule out an array or a scalar the
request may want. The JSON stage then validates what comes back.

The body is read only as fast as deltas are pulled; closing the stream closes
the connection, which is how the provider learns to stop.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass
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
    mid_stream_error,
    parse_event,
)
from llmrouter_server.backends.sse import read_to_end
from llmrouter_server.config import AnthropicBackendConfig
from llmrouter_server.errors import BackendError
from llmrouter_server.values import FinishReason, Role, Usage

_STOP_REASONS = {
    "end_turn": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "stop_sequence": FinishReason.STOP_SEQUENCE,
    "refusal": FinishReason.CONTENT_FILTER,
}

_RETRYABLE_ERRORS = frozenset({"overloaded_error", "api_error", "rate_limit_error"})
"""In-stream error types another attempt may not meet."""


class AnthropicBackend:
    """Streams messages from the Anthropic Messages API."""

    kind = "anthropic"
    supports_json = True
    """By an instruction, not by constrained decoding: the JSON stage validates."""

    def __init__(
        self,
        name: str,
        config: AnthropicBackendConfig,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Builds the connection pool.

        Args:
            name: The configured backend name.
            config: Where the API is, its version and how long to wait for it.
            transport: An httpx transport to use instead of the network (tests).

        Raises:
            ConfigError: ``api_key_file`` is set and cannot be read.
        """
        self.name = name
        self.max_concurrency = config.max_concurrency
        headers = {
            "anthropic-version": config.anthropic_version,
            "content-type": "application/json",
        }
        key = configured_api_key(name, config)
        if key:
            headers["x-api-key"] = key
        self._http = EventStreamClient(name, config, headers, transport)

    async def stream(self, request: BackendRequest) -> AsyncGenerator[Delta, None]:
        """Posts the request with ``stream: true``; yields a delta per text delta.

        The last delta carries the finish reason and the usage, after
        ``message_stop``; a body that ends before it is an error.
        """
        payload, held, lead = _payload(request)
        turn = _Turn(self.name, held, lead)
        async with self._http.post("messages", payload, request.trace_headers) as batches:
            async for batch in batches:
                for sse in batch:
                    delta = turn.read(sse.event, parse_event(self.name, sse.data))
                    if turn.done:
                        break
                    if delta is not None:
                        yield delta
                if turn.done:
                    await read_to_end(batches)
                    break
            else:
                raise ended_early(self.name)
        yield turn.last()

    async def close(self) -> None:
        """Closes the connection pool."""
        await self._http.aclose()


def _payload(request: BackendRequest) -> tuple[dict[str, Any], str, str]:
    """The request body, the whitespace cut from the end of the prefill, and the
    prefill the model's first text must be joined to (JSON output's ``{``)."""
    messages, held = _messages(request)
    lead = ""
    if request.json_output and not request.continuation and _wants_object(request.json_schema):
        messages.append({"role": "assistant", "content": "{"})
        lead = "{"
    payload: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "stream": True,
        "messages": messages,
    }
    system = "\n\n".join(
        [m.content for m in request.messages if m.role is Role.SYSTEM]
        + ([_json_instruction(request.json_schema)] if request.json_output else [])
    )
    optional = {
        "system": system or None,
        "temperature": request.sampling.temperature,
        "top_p": request.sampling.top_p,
        "top_k": request.sampling.top_k,
        "stop_sequences": list(request.stop) or None,
    }
    payload.update({key: value for key, value in optional.items() if value is not None})
    return payload, held, lead


def _json_instruction(schema: str) -> str:
    """The system paragraph that asks for JSON output."""
    instruction = (
        "Answer with a single JSON value and nothing else: no text before or after it,"
        " no Markdown code fence."
    )
    if not schema:
        return instruction
    return f"{instruction} The value must be valid against this JSON Schema:\n{schema}"


def _wants_object(schema: str) -> bool:
    """True when the schema (already validated as JSON) admits only an object."""
    if not schema:
        return False
    document = json.loads(schema)
    return isinstance(document, dict) and document.get("type") == "object"


def _messages(request: BackendRequest) -> tuple[list[dict[str, str]], str]:
    turns = [
        {"role": str(m.role), "content": m.content}
        for m in request.messages
        if m.role is not Role.SYSTEM
    ]
    prefill = request.continuation.rstrip()
    if prefill:
        turns.append({"role": "assistant", "content": prefill})
    return turns, request.continuation[len(prefill) :]


@dataclass(slots=True)
class _Turn:
    """What one stream has reported so far."""

    backend: str
    held: str
    """Whitespace cut from the prefill, still to be dropped from the first text."""
    lead: str = ""
    """A prefill the model continues that the output must show: put before the first text."""
    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str | None = None
    done: bool = False
    """Set at ``message_stop``."""

    def read(self, name: str, event: dict[str, Any]) -> Delta | None:
        """Takes in one event; returns the delta it carries, if any.

        Args:
            name: The SSE event name, used when the data has no ``type``.
            event: The event's decoded data.

        Raises:
            BackendError: The event reports an error.
        """
        kind = event.get("type", name)
        if kind == "content_block_delta":
            return self._text(_object(event, "delta"))
        if kind == "message_start":
            self._count(_object(_object(event, "message"), "usage"))
            # Prompt tokens are known now: a cancelled generation still counts them.
            return Delta(usage=Usage(self.input_tokens, 0)) if self.input_tokens else None
        if kind == "message_delta":
            self._count(_object(event, "usage"))
            self.stop_reason = _object(event, "delta").get("stop_reason") or self.stop_reason
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            raise self._error(_object(event, "error"), event)
        return None

    def last(self) -> Delta:
        """The final delta: the finish reason and the usage."""
        reason = _STOP_REASONS.get(self.stop_reason or "", FinishReason.STOP)
        return Delta(finish_reason=reason, usage=Usage(self.input_tokens, self.output_tokens))

    def _text(self, delta: dict[str, Any]) -> Delta | None:
        text = delta.get("text")
        if delta.get("type") != "text_delta" or not isinstance(text, str) or not text:
            return None
        if self.held:
            text = text.removeprefix(self.held)
            self.held = ""
        if self.lead:
            text, self.lead = self.lead + text, ""
        return Delta(text=text, token_count=1)

    def _count(self, usage: dict[str, Any]) -> None:
        # Counts are cumulative: a later event's replace an earlier one's.
        self.input_tokens = _int(usage.get("input_tokens"), self.input_tokens)
        self.output_tokens = _int(usage.get("output_tokens"), self.output_tokens)

    def _error(self, error: dict[str, Any], event: dict[str, Any]) -> BackendError:
        message = error_text(event) or "no message"
        retryable = error.get("type") in _RETRYABLE_ERRORS
        return mid_stream_error(self.backend, message, retryable=retryable)


def _object(payload: dict[str, Any], key: str) -> dict[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, dict) else {}


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) else default
