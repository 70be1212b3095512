"""The backend interface: open a stream of deltas, cancel it, close.

A backend's ``stream`` is an async generator. Pulling the next delta is what
makes the backend produce it, so a consumer that stops pulling stops the
backend; closing the generator (``aclose``) cancels the generation and frees
whatever it held (a llama.cpp instance, an HTTP connection).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol

from llmrouter_server.values import FinishReason, Message, Sampling, Usage


@dataclass(frozen=True, slots=True)
class BackendRequest:
    """What one attempt asks of one backend."""

    model: str
    """The model name the backend knows."""
    messages: tuple[Message, ...]
    """The conversation."""
    max_tokens: int
    """Upper bound on generated tokens."""
    sampling: Sampling
    """Sampling settings; ``max_tokens`` there is ignored in favour of the field above."""
    stop: tuple[str, ...] = ()
    """Stop sequences."""
    json_output: bool = False
    """Constrain the output to JSON."""
    json_schema: str = ""
    """A JSON Schema for the output, as JSON text."""
    want_token_ids: bool = False
    """Report token ids when the backend can."""
    continuation: str = ""
    """Text the answer already starts with; the backend continues after it."""
    merge_reads: bool = False
    """The caller coalesces the text anyway (ADAPTIVE, TIME): the tokens one
    network read brings may come as one delta (with their count), sparing the
    per-delta work. Token ids are not asked for then."""
    trace_headers: tuple[tuple[str, str], ...] = ()
    """W3C trace context (``traceparent``, ``tracestate``) of the generation, as
    HTTP headers: an HTTP backend sends them so the upstream joins the trace."""


# Not frozen: a frozen dataclass's __init__ sets each field through
# object.__setattr__, which costs about a microsecond per field on the
# per-token path. Nothing changes one once made.
@dataclass(slots=True)
class Delta:
    """A piece of a backend's output.

    The last delta of a stream carries ``finish_reason``; ``usage`` is set when
    the backend reports token counts (usually on the last delta).
    """

    text: str = ""
    """New text."""
    token_count: int = 0
    """Tokens this text came from."""
    token_ids: tuple[int, ...] = ()
    """Their ids, when requested and known."""
    finish_reason: FinishReason | None = None
    """Set on the last delta."""
    usage: Usage | None = None
    """Token counts reported by the backend."""


class Backend(Protocol):
    """A source of generated text."""

    name: str
    """The configured backend name."""
    kind: str
    """The protocol: ``embedded``, ``openai``, ``anthropic`` or ``scripted``."""
    max_concurrency: int
    """Generations this backend runs at once; more wait in a FIFO queue."""
    supports_json: bool
    """True when the backend can constrain output to JSON (``json_output``)."""

    def stream(self, request: BackendRequest) -> AsyncGenerator[Delta, None]:
        """Generates text for one request, one delta per pull.

        The last delta carries ``finish_reason``. A stream that cannot go on
        raises a ``BackendError`` saying what happened in the router's words
        (retryable or not); routing decides what follows.
        """
        ...

    async def close(self) -> None:
        """Releases the backend's resources; no stream may be open."""
        ...
