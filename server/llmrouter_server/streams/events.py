"""The events a generation emits, in domain terms.

Every event gets the generation's id and the next offset when it is recorded;
the gRPC layer encodes them one to one into ``StreamEvent`` messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmrouter_server.errors import FailedAttempt
from llmrouter_server.routing.items import FallbackUsed
from llmrouter_server.values import CancelledBy, FinishReason, Usage


@dataclass(frozen=True, slots=True)
class Started:
    """The generation was accepted and routed."""

    route: str
    """The route serving it."""
    model: str
    """The model of the first target."""
    backend: str
    """The backend of the first target."""
    max_tokens: int
    """The effective token limit."""
    prompt_tokens: int = 0
    """Prompt tokens, when counted before generating."""


@dataclass(frozen=True, slots=True)
class Queued:
    """The generation waits for a backend slot."""

    position: int
    """1 means next in line."""


@dataclass(frozen=True, slots=True)
class Progress:
    """How far the generation is."""

    completion_tokens: int
    """Tokens so far."""
    max_tokens: int
    """The token limit."""
    tokens_per_second: float
    """Rate since the first token."""
    elapsed: float
    """Seconds since the start."""
    fraction: float = 0.0
    """``completion_tokens / max_tokens``, at most 1."""
    eta: float | None = None
    """Seconds until ``max_tokens`` at the current rate; None while no rate is known."""
    time_to_first_token: float | None = None
    """Seconds from the start to the first chunk; None before it."""


@dataclass(frozen=True, slots=True)
class ChunkSource:
    """Where a chunk came from."""

    model: str
    """The model."""
    backend: str
    """The backend name."""
    attempt: int
    """The attempt, counting from 1."""
    target: int = 0
    """The target's index in the route (tells MERGE outputs apart)."""


@dataclass(frozen=True, slots=True)
class ChunkTiming:
    """When a chunk came, for its metadata."""

    produced_at: float
    """Wall-clock time the text was taken from the backend (seconds since the epoch)."""
    since_previous: float | None = None
    """Seconds since the generation's previous chunk; None for the first."""


# Not frozen: a frozen dataclass's __init__ sets each field through
# object.__setattr__, which costs about a microsecond per field on the
# per-token path. Nothing changes one once made.
@dataclass(slots=True)
class Chunk:
    """Generated text."""

    text: str
    """The text."""
    token_count: int
    """Tokens it came from."""
    token_ids: tuple[int, ...] = ()
    """Token ids, when requested and known."""
    progress: Progress | None = None
    """Progress, when requested."""
    source: ChunkSource | None = None
    """Source, when requested (always under MERGE)."""
    timing: ChunkTiming | None = None
    """When it came, when metadata is requested."""


@dataclass(frozen=True, slots=True)
class JsonSnapshot:
    """JSON output only: the value parsed so far."""

    json: str
    """The output so far, closed into valid JSON text."""
    complete: bool
    """True once the output is a complete JSON value."""


@dataclass(frozen=True, slots=True)
class Timings:
    """Latencies of one generation, in seconds."""

    queue_time: float
    """Waiting for a slot."""
    time_to_first_token: float
    """Start to first chunk."""
    total_time: float
    """Start to completion."""
    tokens_per_second: float
    """Output rate from first token to completion."""


@dataclass(frozen=True, slots=True)
class AttemptUsage:
    """The tokens of one attempt."""

    attempt: int
    """The attempt, counting from 1."""
    target: int
    """Its target's index in the route."""
    model: str
    """The target's model."""
    backend: str
    """The target's backend."""
    usage: Usage
    """Its token counts."""


@dataclass(frozen=True, slots=True)
class Completed:
    """The last event of a successful or cancelled generation."""

    finish_reason: FinishReason
    """Why it ended."""
    usage: Usage
    """Token counts."""
    timings: Timings
    """Latencies."""
    model: str
    """The model that produced the final text."""
    backend: str
    """The backend that produced it."""
    attempts: int
    """Attempts made."""
    attempt_usage: tuple[AttemptUsage, ...] = ()
    """Usage per attempt; ``usage`` is their sum."""
    cancelled_by: CancelledBy | None = None
    """CANCELLED only: who cancelled it."""
    cancel_reason: str = ""
    """CANCELLED only: why, as the canceller said."""


@dataclass(frozen=True, slots=True)
class Paused:
    """The producer stopped at a client's request."""

    reason: str
    """Why, as given by whoever paused it."""


@dataclass(frozen=True, slots=True)
class Resumed:
    """The producer continues."""


@dataclass(frozen=True, slots=True)
class Gap:
    """Events a slow subscriber skipped (never recorded in a log)."""

    from_offset: int
    """The first skipped offset."""
    to_offset: int
    """The last skipped offset."""


EventKind = (
    Started
    | Queued
    | Chunk
    | JsonSnapshot
    | FailedAttempt
    | FallbackUsed
    | Paused
    | Resumed
    | Completed
    | Gap
)


# Not frozen: a frozen dataclass's __init__ sets each field through
# object.__setattr__, which costs about a microsecond per field on the
# per-token path. Nothing changes one once made.
@dataclass(slots=True)
class Event:
    """One recorded event of a generation."""

    stream_id: str
    """The generation."""
    offset: int
    """Its position in the generation's log."""
    time: float
    """Wall-clock time it was recorded (seconds since the epoch)."""
    kind: EventKind
    """What happened."""
