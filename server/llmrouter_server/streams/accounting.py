"""Turns backend deltas into chunk and completion events, keeping the tally.

It owns the clock readings and token counts of one generation: queue time,
time to first token, tokens per second, usage.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from llmrouter_server.backends.base import Delta
from llmrouter_server.routing.router import AttemptStarted
from llmrouter_server.streams.events import (
    Chunk,
    ChunkSource,
    Completed,
    FinishReason,
    Progress,
    Timings,
    Usage,
)
from llmrouter_server.streams.request import StreamOptions


class Accounting:
    """The running tally of one generation."""

    def __init__(
        self, max_tokens: int, options: StreamOptions, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_tokens = max_tokens
        self._options = options
        self._clock = clock
        self.started_at = clock()
        self._attempt_at: float | None = None
        self._first_token_at: float | None = None
        self._last_token_at: float | None = None
        self.completion_tokens = 0
        self.prompt_tokens = 0
        self.finish_reason: FinishReason | None = None
        self.final_reason: FinishReason | None = None
        self.source: ChunkSource | None = None
        self._pending_tokens = 0
        self._pending_ids: list[int] = []

    def attempt(self, item: AttemptStarted) -> None:
        """Records that an attempt got its slot."""
        if self._attempt_at is None:
            self._attempt_at = self._clock()
        self.source = ChunkSource(item.target.model, item.target.backend.name, item.attempt)

    def chunk(self, delta: Delta) -> Chunk | None:
        """Counts a delta; returns the chunk to emit, or None if it has no text.

        Tokens of deltas without text (a partial UTF-8 character, text held
        back for a stop sequence) are carried into the next chunk.
        """
        if delta.finish_reason is not None:
            self.finish_reason = delta.finish_reason
        self.completion_tokens += delta.token_count
        self._pending_tokens += delta.token_count
        self._pending_ids.extend(delta.token_ids)
        if delta.usage is not None:
            # A backend's own count is authoritative over one-per-delta counting.
            self.prompt_tokens = delta.usage.prompt_tokens or self.prompt_tokens
            self.completion_tokens = delta.usage.completion_tokens or self.completion_tokens
        if not delta.text:
            return None
        now = self._clock()
        if self._first_token_at is None:
            self._first_token_at = now
        self._last_token_at = now
        token_count, token_ids = self._pending_tokens, tuple(self._pending_ids)
        self._pending_tokens = 0
        self._pending_ids.clear()
        return Chunk(
            text=delta.text,
            token_count=token_count,
            token_ids=token_ids if self._options.include_token_ids else (),
            progress=self._progress(now) if self._options.include_progress else None,
            source=self.source if self._options.include_metadata else None,
        )

    def stop_sequence(self) -> None:
        """Records that a stop sequence ended the generation."""
        self.finish_reason = FinishReason.STOP_SEQUENCE

    def completed(self, *, cancelled: bool = False) -> Completed:
        """The completion event for the tally so far."""
        reason = FinishReason.CANCELLED if cancelled else self.finish_reason or FinishReason.STOP
        self.final_reason = reason
        now = self._clock()
        first = self._first_token_at
        return Completed(
            finish_reason=reason,
            usage=Usage(self.prompt_tokens, self.completion_tokens),
            timings=Timings(
                queue_time=(self._attempt_at or now) - self.started_at,
                time_to_first_token=(first - self.started_at) if first is not None else 0.0,
                total_time=now - self.started_at,
                tokens_per_second=self._rate(now),
            ),
            model=self.source.model if self.source else "",
            backend=self.source.backend if self.source else "",
            attempts=self.source.attempt if self.source else 0,
        )

    def _progress(self, now: float) -> Progress:
        return Progress(
            completion_tokens=self.completion_tokens,
            max_tokens=self.max_tokens,
            tokens_per_second=self._rate(now),
            elapsed=now - self.started_at,
        )

    def _rate(self, now: float) -> float:
        first = self._first_token_at
        if first is None or self.completion_tokens <= 1:
            return 0.0
        last = self._last_token_at if self._last_token_at is not None else now
        span = last - first
        # The first token starts the clock; the rate counts the tokens after it.
        return (self.completion_tokens - 1) / span if span > 0 else 0.0
