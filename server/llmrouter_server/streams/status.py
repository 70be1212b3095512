"""A point-in-time description of a generation, for lookups and watchers."""

from __future__ import annotations

from dataclasses import dataclass

from llmrouter_server.errors import RouterError
from llmrouter_server.streams.generation import Generation
from llmrouter_server.streams.lifecycle import StreamState
from llmrouter_server.values import FinishReason, Usage


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """What a generation looks like at one moment."""

    stream_id: str
    """The generation."""
    state: StreamState
    """Its lifecycle state."""
    route: str
    """The route it runs on."""
    model: str
    """The model producing (or that produced) its text."""
    backend: str
    """The backend producing (or that produced) its text."""
    next_offset: int
    """The offset the next event gets."""
    first_retained_offset: int
    """The oldest offset still available for replay."""
    usage: Usage
    """Tokens so far."""
    finish_reason: FinishReason | None
    """Why it finished, once finished."""
    created_at: float
    """Start time, seconds since the epoch."""
    finished_at: float | None
    """End time, seconds since the epoch."""
    consumers: int
    """Attached readers (the caller and subscribers)."""
    error: RouterError | None
    """What ended it, when it failed or was cancelled by someone else."""
    labels: tuple[tuple[str, str], ...]
    """The caller's labels."""
    tenant: str
    """The tenant that started it."""


def snapshot(generation: Generation) -> StreamStatus:
    """The status of a generation now."""
    tally = generation.tally
    target = generation.route.targets[0]
    source = tally.source
    return StreamStatus(
        stream_id=generation.stream_id,
        state=generation.state,
        route=generation.route.name,
        model=source.model if source else target.model,
        backend=source.backend if source else target.backend.name,
        next_offset=generation.log.next_offset,
        first_retained_offset=generation.log.first_offset,
        usage=tally.usage,
        finish_reason=tally.final_reason,
        created_at=generation.created_at,
        finished_at=generation.finished_at,
        consumers=generation.consumers,
        error=generation.error,
        labels=generation.request.labels,
        tenant=generation.owner.tenant,
    )
