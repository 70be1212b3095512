"""The transcript of one generation: what each backend stream produced.

Routing records every delta it yields here, so a new backend stream (after a
failure, or after the backend was released while the generation waited)
continues after exactly the text already produced: the text sent to the
client and the text a shaping stage still holds back. Usage is kept per
backend stream and summed, so every attempt counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmrouter_server.backends.base import Delta
from llmrouter_server.errors import FailedAttempt
from llmrouter_server.values import Usage


@dataclass(slots=True)
class Segment:
    """One backend stream: an attempt, or its continuation after a release."""

    attempt: int
    """The attempt it belongs to, counting from 1."""
    target: int
    """The target's index in the route."""
    model: str
    """The target's model."""
    backend: str
    """The target's backend."""
    tokens: int = 0
    """Tokens counted from its deltas."""
    reported: Usage | None = None
    """Token counts the backend reported, if it did."""

    def add(self, delta: Delta) -> None:
        """Counts a delta this backend stream produced."""
        self.tokens += delta.token_count
        if delta.usage is not None:
            self.reported = delta.usage

    @property
    def usage(self) -> Usage:
        """The backend's counts where it gave them, else the counted tokens."""
        reported = self.reported or Usage()
        return Usage(reported.prompt_tokens, reported.completion_tokens or self.tokens)


@dataclass(slots=True)
class _Lane:
    text: list[str] = field(default_factory=list)
    tokens: int = 0
    finished: bool = False
    failed: bool = False


class Transcript:
    """Every backend stream of one generation, and the text it has so far.

    Attributes:
        segments: Every backend stream, in order; usage is their sum.
        failures: Every failed attempt, in order.
        attempts: The highest attempt number started.
        target: The target of the attempt whose text was passed on last; a
            continuation after a release goes back to it.

    Text is kept per lane: one lane for a generation (lane 0), one per
    target under MERGE. Only what was passed on to the generation counts
    as text: a losing RACE contender's token never does.
    """

    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self.failures: list[FailedAttempt] = []
        self.attempts = 0
        self.target: int | None = None
        self._lanes: dict[int, _Lane] = {}

    def begin(self, segment: Segment) -> Segment:
        """Starts counting a new backend stream (its usage counts, won or lost)."""
        self.segments.append(segment)
        self.attempts = max(self.attempts, segment.attempt)
        return segment

    def extend(self, delta: Delta, lane: int = 0) -> None:
        """Adds a delta that was passed on to the generation."""
        state = self._lanes.setdefault(lane, _Lane())
        state.tokens += delta.token_count
        if delta.text:
            state.text.append(delta.text)
        if delta.finish_reason is not None:
            state.finished = True

    def text(self, lane: int = 0) -> str:
        """The text produced so far (since the last restart)."""
        state = self._lanes.get(lane)
        return "".join(state.text) if state else ""

    def tokens(self, lane: int = 0) -> int:
        """Tokens produced so far (since the last restart), toward the limit."""
        state = self._lanes.get(lane)
        return state.tokens if state else 0

    def fail(self, failure: FailedAttempt, lane: int = 0) -> None:
        """Records a failed attempt; under MERGE its lane is over."""
        self.failures.append(failure)
        self._lanes.setdefault(lane, _Lane()).failed = True

    def finished(self, lane: int) -> bool:
        """True once the lane's backend said it was done."""
        state = self._lanes.get(lane)
        return state.finished if state else False

    def ended(self, lane: int) -> bool:
        """True once the lane finished or failed (MERGE does not start it again)."""
        state = self._lanes.get(lane)
        return state is not None and (state.finished or state.failed)

    def restart(self, lane: int = 0) -> None:
        """Forgets the text of a lane (RESTART); usage keeps counting."""
        self._lanes[lane] = _Lane()

    def usage(self) -> Usage:
        """Usage summed over every backend stream."""
        prompt = sum(segment.usage.prompt_tokens for segment in self.segments)
        completion = sum(segment.usage.completion_tokens for segment in self.segments)
        return Usage(prompt, completion)

    def usage_by_attempt(self) -> list[Segment]:
        """One segment per attempt, continuations after a release folded in."""
        merged: dict[int, Segment] = {}
        for segment in self.segments:
            seen = merged.get(segment.attempt)
            if seen is None:
                merged[segment.attempt] = Segment(
                    segment.attempt, segment.target, segment.model, segment.backend,
                    segment.usage.completion_tokens, segment.usage,
                )  # fmt: skip
                continue
            total = Usage(
                seen.usage.prompt_tokens + segment.usage.prompt_tokens,
                seen.usage.completion_tokens + segment.usage.completion_tokens,
            )
            seen.tokens, seen.reported = total.completion_tokens, total
        return list(merged.values())
