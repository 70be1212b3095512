"""Value types shared by every layer: conversations, sampling, finish reasons, usage.

They sit below backends, routing and streams, so imports point one way down
the data path and a backend never imports a stream type.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FinishReason(StrEnum):
    """Why a generation ended."""

    STOP = "stop"
    LENGTH = "length"
    STOP_SEQUENCE = "stop_sequence"
    CANCELLED = "cancelled"
    CONTENT_FILTER = "content_filter"


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts."""

    prompt_tokens: int = 0
    """Tokens in the prompt."""
    completion_tokens: int = 0
    """Generated tokens."""

    @property
    def total_tokens(self) -> int:
        """Their sum."""
        return self.prompt_tokens + self.completion_tokens


class Role(StrEnum):
    """The author of a chat message."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of a conversation."""

    role: Role | None
    """Who wrote it; None when the client left it unset (rejected)."""
    content: str
    """What was written."""


@dataclass(frozen=True, slots=True)
class Sampling:
    """Token selection settings; None means the backend's default."""

    max_tokens: int | None = None
    """Upper bound on generated tokens."""
    temperature: float | None = None
    """Softmax temperature."""
    top_p: float | None = None
    """Nucleus sampling mass."""
    top_k: int | None = None
    """Top-k cut-off."""
    seed: int | None = None
    """Random seed."""
    presence_penalty: float | None = None
    """Penalty for tokens already present."""
    frequency_penalty: float | None = None
    """Penalty proportional to frequency."""


class RoutePolicy(StrEnum):
    """How a route spreads a generation over its targets."""

    FALLBACK = "fallback"
    """Targets in order; the next one when one fails."""
    RACE = "race"
    """Start the next target when the first token is late; the first token wins."""
    WEIGHTED = "weighted"
    """Pick by weight among targets whose circuit is not open; fall back to the others."""
    MERGE = "merge"
    """Run every target at once and interleave their chunks, tagged by target."""


class MidStreamAction(StrEnum):
    """What happens when a target fails after text was emitted."""

    CONTINUE = "continue"
    """Continue on the next target with the text so far as the start of the answer."""
    RESTART = "restart"
    """Start again on the next target; the client is told to discard the text."""
    FAIL = "fail"
    """End the generation with the failure."""


class CancelledBy(StrEnum):
    """Who cancelled a generation."""

    CALLER = "caller"
    """The Generate caller (``cancel``, or its call ended under CANCEL)."""
    OPERATOR = "operator"
    """An operator, through Control."""
    DETACH_TIMEOUT = "detach_timeout"
    """Nobody re-attached to a detached generation within its TTL."""
    SHUTDOWN = "shutdown"
    """The server shut down first."""
