"""Stop sequences, the first shaping stage, the same for every backend.

Text that might be the start of a stop sequence is held back until the next
piece decides it, so a stop sequence is never emitted, even when a backend
splits it across deltas; held text is released as soon as it cannot begin
one. The output ends at the stop sequence that completes first, as a
streaming model would stop there, whatever the split. Tokens of held text
travel with the next piece that has text.
"""

from __future__ import annotations

from llmrouter_server.shaping.stage import Piece


class StopSequences:
    """Cuts the output before the first stop sequence.

    Attributes:
        done: True once a stop sequence was seen; later text is dropped.
    """

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = stops
        self._held = ""
        self.done = False

    @property
    def held(self) -> str:
        """Text that may still begin a stop sequence."""
        return self._held

    def feed(self, piece: Piece) -> list[Piece]:
        """Passes on the part of the held text and ``piece`` that is safe to emit."""
        if self.done:
            return [Piece(token_count=piece.token_count, token_ids=piece.token_ids)]
        buffer = self._held + piece.text
        cut = self._first_completed(buffer)
        if cut is not None:
            self.done = True
            self._held = ""
            return [Piece(buffer[:cut], piece.token_count, piece.token_ids)]
        hold = self._longest_partial(buffer)
        self._held = buffer[len(buffer) - hold :]
        return [Piece(buffer[: len(buffer) - hold], piece.token_count, piece.token_ids)]

    def flush(self, *, complete: bool = True) -> list[Piece]:
        """The held text, once the output has ended without a stop sequence."""
        held, self._held = self._held, ""
        return [Piece(held)] if held else []

    def due_in(self) -> float | None:
        """Never: held text waits for the next piece or the end."""
        return None

    def tick(self) -> list[Piece]:
        """Nothing is released by time."""
        return []

    def _first_completed(self, buffer: str) -> int | None:
        """Where the output is cut: at the stop sequence that completes first.

        The stop whose first occurrence ends earliest wins (on a tie, the one
        that starts earliest), so the cut is the same however the text was
        split into pieces.
        """
        found = [
            (index + len(stop), index) for stop in self._stops if (index := buffer.find(stop)) >= 0
        ]
        return min(found)[1] if found else None

    def _longest_partial(self, buffer: str) -> int:
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(buffer)), longest, -1):
                if buffer.endswith(stop[:size]):
                    longest = size
                    break
        return longest
