"""The one interface of a shaping stage, and the pipeline that composes them.

Between a route's deltas and a generation's chunk events, text passes through
stages in a fixed order: stop sequences, then (as they are built) JSON,
progress and metadata, coalescing. A stage takes a piece of text and passes
on pieces; it may hold text back, and says how much. What a stage holds back
is already in the route's transcript, so a continuation after a failure or a
release never repeats it; only a RESTART discards it (with a new pipeline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


# Not frozen: a frozen dataclass's __init__ sets each field through
# object.__setattr__, which costs about a microsecond per field on the
# per-token path. Nothing changes one once made.
@dataclass(slots=True)
class Piece:
    """Text and the tokens it came from."""

    text: str = ""
    """The text; empty when a stage holds all of it back."""
    token_count: int = 0
    """Tokens, counted once: a piece with no text carries them on."""
    token_ids: tuple[int, ...] = ()
    """Their ids, when known."""
    snapshot: str | None = None
    """JSON output only: the value so far, closed into valid JSON text, when it changed."""
    complete: bool = False
    """With ``snapshot``: True once the output is a complete JSON value."""


class Stage(Protocol):
    """One step between a route's deltas and chunk events."""

    @property
    def held(self) -> str:
        """Text taken in and not passed on yet."""
        ...

    @property
    def done(self) -> bool:
        """True once the stage has ended the output (later text is dropped)."""
        ...

    def feed(self, piece: Piece) -> list[Piece]:
        """Takes a piece; returns what passes on now, in order."""
        ...

    def flush(self, *, complete: bool = True) -> list[Piece]:
        """The output has ended: returns everything still held.

        Args:
            complete: False when it was cut short (a cancel, a failure): what
                is held still goes out, but nothing is finished or checked.
        """
        ...

    def due_in(self) -> float | None:
        """Seconds until held text must go out even if nothing new comes; None: no need."""
        ...

    def tick(self) -> list[Piece]:
        """Called once ``due_in`` has passed: returns what goes out now."""
        ...


class Pipeline:
    """Stages composed in order: what one passes on, the next takes in."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self._stages = tuple(stages)
        self.empty = not self._stages
        """No stage: a piece passes through as it is (nothing held, nothing timed)."""

    @property
    def held(self) -> str:
        """Text held back by any stage, in order."""
        return "".join(stage.held for stage in self._stages)

    @property
    def done(self) -> bool:
        """True once a stage has ended the output."""
        return any(stage.done for stage in self._stages)

    def feed(self, piece: Piece) -> list[Piece]:
        """Passes a piece through every stage."""
        return self._through(self._stages, [piece])

    def flush(self, *, complete: bool = True) -> list[Piece]:
        """Flushes each stage in order, passing what it held through the later ones."""
        pieces: list[Piece] = []
        for index, stage in enumerate(self._stages):
            flushed = stage.flush(complete=complete)
            pieces = self._through(self._stages[index : index + 1], pieces) + flushed
        return pieces

    def due_in(self) -> float | None:
        """The soonest any stage needs a ``tick``; None when none does."""
        dues = [due for stage in self._stages if (due := stage.due_in()) is not None]
        return min(dues) if dues else None

    def tick(self) -> list[Piece]:
        """Ticks each stage, passing what it lets go through the later ones."""
        pieces: list[Piece] = []
        for index, stage in enumerate(self._stages):
            pieces = self._through(self._stages[index : index + 1], pieces) + stage.tick()
        return pieces

    @staticmethod
    def _through(stages: Sequence[Stage], pieces: list[Piece]) -> list[Piece]:
        for stage in stages:
            pieces = [out for piece in pieces for out in stage.feed(piece)]
        return pieces
