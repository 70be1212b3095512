"""Who a generation runs for: its caller's cursor, or the place kept while detached.

A generation has at most one owner, the caller's lossless cursor. When the
caller leaves a generation started with DETACH, a place-holder cursor keeps
the caller's offset and a timer waits for a consumer to come back: the
generation runs ahead as far as the replay budget, then waits. A caller that
re-attaches within the TTL takes the place over; when the TTL runs out, the
generation is cancelled (``DETACH_TIMEOUT``). The generation decides whether
to detach or cancel; this module owns the cursors and the timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from llmrouter_server.errors import FailedPrecondition
from llmrouter_server.streams.log import Cursor, ReplayLog, Window


class Attachment:
    """The caller's cursor on a generation's log, or its place-holder and timer."""

    def __init__(self, log: ReplayLog, window: Window, on_expired: Callable[[], None]) -> None:
        """Sets up a generation with no caller attached yet.

        Args:
            log: The generation's replay log.
            window: How far the caller may fall behind before the producer waits.
            on_expired: Called when the detach TTL runs out with no consumer back.
        """
        self._log = log
        self._window = window
        self._on_expired = on_expired
        self._owner: Cursor | None = None
        self._placeholder: Cursor | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def detached(self) -> bool:
        """True while the caller is gone and its place is kept."""
        return self._placeholder is not None

    @property
    def owner(self) -> Cursor | None:
        """The caller's cursor, while a caller is attached."""
        return self._owner

    def owner_lags(self) -> bool:
        """True while the caller's cursor has events it has not taken."""
        return self._owner is not None and self._owner.lag()[0] > 0

    def attach(self, offset: int, credits: int | None) -> Cursor:
        """The caller's lossless cursor, from ``offset``, replacing a place-holder.

        Raises:
            FailedPrecondition: Another caller owns the generation.
            OutOfRange: The offset is not available.
        """
        if self._owner is not None:
            raise FailedPrecondition(
                f"stream {self._log.stream_id!r} is attached to another caller",
                stream_id=self._log.stream_id,
            )
        if self._placeholder is not None:
            # Re-attaching: the place-holder kept everything after its offset.
            self._placeholder.close()
            self._placeholder = None
        self._cancel_timer()
        self._owner = self._log.cursor(offset, self._window, credits=credits)
        return self._owner

    def leave(self, cursor: Cursor) -> None:
        """Closes a caller's cursor; the generation has no owner if it was the owner's."""
        cursor.close()
        if cursor is self._owner:
            self._owner = None

    def detach(self, offset: int, ttl: float) -> None:
        """Keeps the caller's place from ``offset`` for ``ttl`` seconds."""
        # A lossless place-holder as large as the replay budget: the generation
        # runs ahead that far, then waits for the caller to come back.
        budget = self._log.retain_bytes
        window = Window(budget, budget, budget, budget)
        self._placeholder = self._log.cursor(offset, window)
        self._timer = asyncio.get_running_loop().call_later(ttl, self._expired)

    def close(self) -> None:
        """The generation has finished: stops the timer and drops the place-holder."""
        self._cancel_timer()
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None

    def _expired(self) -> None:
        self._timer = None
        if self._placeholder is not None:
            self._on_expired()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
