"""How the fault upstream frames each provider's stream: OpenAI and Anthropic SSE.

Each dialect gives the events before the first token, the event of one
token, the events that end a complete answer, a malformed event and the JSON
body of an error status, in the shape the real provider uses.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

PROMPT_TOKENS = 7
"""The prompt token count every response reports."""


def _sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {payload}\n\n".encode()


class Dialect(Protocol):
    """How one provider frames a stream and its errors."""

    def opening(self) -> bytes:
        """Events before the first token."""

    def token(self, text: str) -> bytes:
        """The event carrying one token."""

    def closing(self, tokens: int) -> bytes:
        """Events after the last token of a complete answer of ``tokens`` tokens."""

    def malformed(self) -> bytes:
        """An event whose data is not JSON."""

    def error(self, code: int) -> str:
        """The JSON error body of an HTTP status."""


class _OpenAI:
    def opening(self) -> bytes:
        return b""

    def token(self, text: str) -> bytes:
        return _sse({"choices": [{"index": 0, "delta": {"content": text}}]})

    def closing(self, tokens: int) -> bytes:
        usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": tokens}
        return (
            _sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            + _sse({"choices": [], "usage": usage})
            + _sse("[DONE]")
        )

    def malformed(self) -> bytes:
        return b"data: {not json\n\n"

    def error(self, code: int) -> str:
        kind = "rate_limit_exceeded" if code == 429 else "server_error"
        return json.dumps({"error": {"message": f"scripted {code}", "type": kind, "code": None}})


class _Anthropic:
    def opening(self) -> bytes:
        start = {
            "type": "message_start",
            "message": {
                "role": "assistant",
                "content": [],
                "usage": {"input_tokens": PROMPT_TOKENS},
            },
        }
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}
        return (
            _sse(start, "message_start")
            + _sse(block, "content_block_start")
            + _sse({"type": "ping"}, "ping")
        )

    def token(self, text: str) -> bytes:
        delta = {"type": "text_delta", "text": text}
        return _sse(
            {"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta"
        )

    def closing(self, tokens: int) -> bytes:
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": tokens},
        }
        return (
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            + _sse(delta, "message_delta")
            + _sse({"type": "message_stop"}, "message_stop")
        )

    def malformed(self) -> bytes:
        return b"event: content_block_delta\ndata: {not json\n\n"

    def error(self, code: int) -> str:
        kinds = {429: "rate_limit_error", 529: "overloaded_error", 400: "invalid_request_error"}
        error = {"type": kinds.get(code, "api_error"), "message": f"scripted {code}"}
        return json.dumps({"type": "error", "error": error})


DIALECTS: dict[str, Dialect] = {
    "/v1/chat/completions": _OpenAI(),
    "/v1/messages": _Anthropic(),
}
