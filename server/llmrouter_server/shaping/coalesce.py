"""Coalescing, the last shaping stage: merges pieces into fewer chunk events.

Four policies (``CoalesceMode``): TOKEN passes every piece on as it comes
(no stage is built for it); SIZE merges until ``max_chars`` characters are
pending; TIME passes the first piece at once and then at most one merged
piece per ``interval``; ADAPTIVE merges while the caller lags and passes
pieces one by one while it keeps up.

Text is never reordered, dropped or split: a merged piece is the pending
pieces joined, with their token counts summed and their token ids in order,
so a token's text and its id always travel in the same chunk. A JSON
snapshot travels with the last text it describes (the newest one wins).
Flush passes on what is pending: the generation flushes its stages when the
output completes, and before the terminal event of a cancel or a failure, so
what was produced stays in the log.
Pending text never grows past ``MAX_CHARS`` characters, so a lagging caller
still stops the producer through the log's window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from llmrouter_server.shaping.stage import Piece

MAX_CHARS = 65536
"""The largest ``max_chars`` accepted, and the most any mode keeps pending."""
MAX_INTERVAL = 10.0
"""The longest TIME ``interval`` accepted, in seconds."""
POLL = 0.01
"""ADAPTIVE: how often, in seconds, pending text checks whether the caller caught up."""
_EARLY = 0.001
"""A tick this close to its due time counts as due (timers may fire slightly early)."""


class CoalesceMode(StrEnum):
    """How pieces are merged into chunk events."""

    TOKEN = "token"  # noqa: S105 - a mode name, not a credential
    """One chunk per piece (no merging)."""
    SIZE = "size"
    """Merge until ``max_chars`` characters are pending."""
    TIME = "time"
    """First piece at once, then at most one merged piece per ``interval``."""
    ADAPTIVE = "adaptive"
    """Merge while the caller lags; one chunk per piece while it keeps up."""


@dataclass(frozen=True, slots=True)
class Coalescing:
    """A coalescing policy, as the client asked for it (validated by the request)."""

    mode: CoalesceMode = CoalesceMode.TOKEN
    """The merge policy."""
    max_chars: int = 0
    """SIZE: pass pending text on once it has at least this many characters; 0 is unset."""
    interval: float | None = None
    """TIME: seconds between merged pieces; None is unset."""


class Coalescer:
    """Merges pieces by one policy (SIZE, TIME or ADAPTIVE).

    Attributes:
        done: Always False: coalescing never ends the output.
    """

    def __init__(
        self,
        policy: Coalescing,
        lagging: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Sets up one lane's coalescing.

        Args:
            policy: The mode and its parameter.
            lagging: ADAPTIVE: True while the caller has events it has not read.
            clock: Seconds, monotonic (TIME's cadence; a fake one in tests).
        """
        self._policy = policy
        self._lagging = lagging
        self._clock = clock
        self._pending: list[Piece] = []
        self._chars = 0
        self._sent_at: float | None = None
        self.done = False

    @property
    def held(self) -> str:
        """Text merged and not passed on yet."""
        return "".join(piece.text for piece in self._pending)

    def feed(self, piece: Piece) -> list[Piece]:
        """Adds ``piece`` to what is pending; returns the merged piece if it is time."""
        self._pending.append(piece)
        self._chars += len(piece.text)
        if self._chars >= MAX_CHARS or self._release_now():
            return self._release()
        return []

    def flush(self, *, complete: bool = True) -> list[Piece]:
        """The output has ended: everything pending, as one piece."""
        return self._release()

    def due_in(self) -> float | None:
        """TIME: until the interval has passed; ADAPTIVE: a short poll; None if nothing pends."""
        if not self._chars:
            return None
        if self._policy.mode is CoalesceMode.TIME:
            return max(0.0, self._next_at() - self._clock())
        if self._policy.mode is CoalesceMode.ADAPTIVE:
            return POLL
        return None

    def tick(self) -> list[Piece]:
        """Passes pending text on once the interval has passed or the caller caught up."""
        if not self._chars:
            return []
        mode = self._policy.mode
        if mode is CoalesceMode.TIME and self._clock() >= self._next_at() - _EARLY:
            return self._release()
        if mode is CoalesceMode.ADAPTIVE and not self._lagging():
            return self._release()
        return []

    def _release_now(self) -> bool:
        """Whether what is pending goes on now, the newest piece included."""
        mode = self._policy.mode
        if mode is CoalesceMode.SIZE:
            return self._chars >= self._policy.max_chars
        if mode is CoalesceMode.TIME:
            # The first text goes out at once; later text at most once per interval.
            return self._sent_at is None or self._clock() >= self._next_at()
        if mode is CoalesceMode.ADAPTIVE:
            return not self._lagging()
        return True

    def _next_at(self) -> float:
        sent_at = self._sent_at if self._sent_at is not None else float("-inf")
        return sent_at + (self._policy.interval or 0.0)

    def _release(self) -> list[Piece]:
        pending, self._pending = self._pending, []
        if not pending:
            return []
        if self._chars:
            self._sent_at = self._clock()
        self._chars = 0
        return [merge(pending)]


def merge(pieces: list[Piece]) -> Piece:
    """One piece with the text, tokens and ids of ``pieces`` in order; the last snapshot."""
    if len(pieces) == 1:
        return pieces[0]
    snapshots = [piece for piece in pieces if piece.snapshot is not None]
    last = snapshots[-1] if snapshots else Piece()
    return Piece(
        text="".join(piece.text for piece in pieces),
        token_count=sum(piece.token_count for piece in pieces),
        token_ids=tuple(token for piece in pieces for token in piece.token_ids),
        snapshot=last.snapshot,
        complete=last.complete,
    )


def coalescing(policy: Coalescing, lagging: Callable[[], bool]) -> list[Coalescer]:
    """The stage for ``policy``: none for TOKEN (every piece is a chunk already)."""
    return [] if policy.mode is CoalesceMode.TOKEN else [Coalescer(policy, lagging)]
