"""Turns backend deltas into chunk and completion events, keeping the tally.

It owns the clock readings of one generation (queue time, time to first
token, tokens per second, the estimate to the token limit, the latency
between chunks) and reads token counts from the route's transcript, where
every attempt's usage is kept and summed. Durations come from a monotonic
clock, timestamps from a wall clock; both are injected so tests drive them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from llmrouter_server.backends.base import Delta
from llmrouter_server.routing.items import AttemptStarted
from llmrouter_server.routing.transcript import Transcript
from llmrouter_server.streams.events import (
    AttemptUsage,
    Chunk,
    ChunkSource,
    ChunkTiming,
    Completed,
    Progress,
    Timings,
)
from llmrouter_server.streams.request import StreamOptions
from llmrouter_server.values import CancelledBy, FinishReason, Usage


class Accounting:
    """The running tally of one generation."""

    def __init__(
        self,
        max_tokens: int,
        options: StreamOptions,
        transcript: Transcript,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Starts the tally (and its clock) of one generation.

        Args:
            max_tokens: The effective token limit.
            options: What each chunk carries.
            transcript: Where the route counts every attempt's tokens.
            clock: Monotonic seconds, for durations.
            wall_clock: Seconds since the epoch, for timestamps.
        """
        self.max_tokens = max_tokens
        self._options = options
        self._transcript = transcript
        self._clock = clock
        self._wall_clock = wall_clock
        self.started_at = clock()
        self._attempt_at: float | None = None
        self._first_token_at: float | None = None
        self._last_token_at: float | None = None
        self.finish_reason: FinishReason | None = None
        self.final_reason: FinishReason | None = None
        self.source: ChunkSource | None = None
        self._pending: dict[int, tuple[int, list[int]]] = {}

    @property
    def usage(self) -> Usage:
        """Tokens over every attempt so far."""
        return self._transcript.usage()

    def attempt(self, item: AttemptStarted) -> None:
        """Records that an attempt got its slot."""
        if self._attempt_at is None:
            self._attempt_at = self._clock()
        self.source = ChunkSource(
            item.target.model, item.target.backend.name, item.attempt, item.index
        )

    def chunk(self, delta: Delta, source: ChunkSource | None = None) -> Chunk | None:
        """Counts a delta; returns the chunk to emit, or None if it has no text.

        Tokens of deltas without text (a partial UTF-8 character, text held
        back for a stop sequence) are carried into the next chunk of the
        same source.
        """
        lane = source.target if source else 0
        # A tagged (MERGE) chunk always names its source; others when asked.
        if source is None and self._options.include_metadata:
            source = self.source
        tokens, ids = self._pending.get(lane, (0, []))
        tokens += delta.token_count
        ids.extend(delta.token_ids)
        if not delta.text:
            self._pending[lane] = (tokens, ids)
            return None
        self._pending.pop(lane, None)
        now = self._clock()
        previous, self._last_token_at = self._last_token_at, now
        if self._first_token_at is None:
            self._first_token_at = now
        return Chunk(
            text=delta.text,
            token_count=tokens,
            token_ids=tuple(ids) if self._options.include_token_ids else (),
            progress=self._progress(now) if self._options.include_progress else None,
            source=source,
            timing=self._timing(now, previous) if self._options.include_metadata else None,
        )

    def finished(self, reason: FinishReason) -> None:
        """Records why the backend ended the output."""
        self.finish_reason = reason

    def stop_sequence(self) -> None:
        """Records that a stop sequence ended the generation."""
        self.finish_reason = FinishReason.STOP_SEQUENCE

    def completed(self, cancelled_by: CancelledBy | None = None, why: str = "") -> Completed:
        """The completion event for the tally so far (a cancellation when ``cancelled_by``)."""
        cancelled = cancelled_by is not None
        reason = FinishReason.CANCELLED if cancelled else self.finish_reason or FinishReason.STOP
        self.final_reason = reason
        now = self._clock()
        return Completed(
            finish_reason=reason,
            usage=self.usage,
            timings=Timings(
                queue_time=(self._attempt_at or now) - self.started_at,
                time_to_first_token=self._time_to_first_token() or 0.0,
                total_time=now - self.started_at,
                tokens_per_second=self._rate(now),
            ),
            model=self.source.model if self.source else "",
            backend=self.source.backend if self.source else "",
            attempts=self._transcript.attempts,
            attempt_usage=tuple(
                AttemptUsage(s.attempt, s.target, s.model, s.backend, s.usage)
                for s in self._transcript.usage_by_attempt()
            ),
            cancelled_by=cancelled_by,
            cancel_reason=why,
        )

    def _progress(self, now: float) -> Progress:
        completion = self.usage.completion_tokens
        limit = self.max_tokens
        rate = self._rate(now)
        return Progress(
            completion_tokens=completion,
            max_tokens=limit,
            tokens_per_second=rate,
            elapsed=now - self.started_at,
            fraction=min(completion / limit, 1.0) if limit > 0 else 0.0,
            eta=max(limit - completion, 0) / rate if rate > 0 else None,
            time_to_first_token=self._time_to_first_token(),
        )

    def _timing(self, now: float, previous: float | None) -> ChunkTiming:
        return ChunkTiming(
            produced_at=self._wall_clock(),
            since_previous=now - previous if previous is not None else None,
        )

    def _time_to_first_token(self) -> float | None:
        first = self._first_token_at
        return first - self.started_at if first is not None else None

    def _rate(self, now: float) -> float:
        first = self._first_token_at
        completion = self.usage.completion_tokens
        if first is None or completion <= 1:
            return 0.0
        last = self._last_token_at if self._last_token_at is not None else now
        span = last - first
        # The first token starts the clock; the rate counts the tokens after it.
        return (completion - 1) / span if span > 0 else 0.0
