"""Which backend streams a generation has begun: its attempts, and continuations.

No event says "attempt started" (only the generation's first attempt shows,
as the RUNNING state); routing records every backend stream it opens in the
generation's transcript (``routing/transcript.py``) before the first delta.
An observer asks ``AttemptWatch.new`` on each notification, which costs one
``len`` when nothing began. A backend stream whose attempt number was seen
before is a continuation: the generation had released its backend (paused,
or held by a slow consumer, past ``release_after``) and goes on after its
text on a new stream.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmrouter_server.routing.transcript import Segment


class AttemptWatch:
    """The backend streams of one generation its observer has already seen."""

    __slots__ = ("_numbers", "seen")

    def __init__(self) -> None:
        self.seen = 0
        """Backend streams seen so far."""
        self._numbers: set[int] = set()

    def new(self, segments: Sequence[Segment]) -> list[tuple[Segment, bool]]:
        """The backend streams begun since the last call, each with True when it
        continues an attempt seen before (after a release)."""
        begun = segments[self.seen :]
        self.seen = len(segments)
        found = []
        for segment in begun:
            found.append((segment, segment.attempt in self._numbers))
            self._numbers.add(segment.attempt)
        return found
