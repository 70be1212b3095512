"""Stop sequences, applied the same way to every backend.

Text that might be the start of a stop sequence is held back until the next
delta decides it, so a stop sequence is never emitted, even when a backend
splits it across deltas.
"""

from __future__ import annotations


class StopMatcher:
    """Cuts a stream of text before the first stop sequence.

    Attributes:
        stopped: True once a stop sequence was seen; later text is dropped.
    """

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = stops
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Returns the part of ``text`` (with held text before it) that is safe to emit."""
        if self.stopped:
            return ""
        buffer = self._held + text
        cuts = [index for stop in self._stops if (index := buffer.find(stop)) >= 0]
        if cuts:
            self.stopped = True
            self._held = ""
            return buffer[: min(cuts)]
        hold = self._longest_partial(buffer)
        self._held = buffer[len(buffer) - hold :]
        return buffer[: len(buffer) - hold]

    def flush(self) -> str:
        """Returns held text once the stream has ended without a stop sequence."""
        held, self._held = self._held, ""
        return held

    def _longest_partial(self, buffer: str) -> int:
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(buffer)), longest, -1):
                if buffer.endswith(stop[:size]):
                    longest = size
                    break
        return longest
