"""The replay log of one generation and the cursors that read it.

Every event of a generation is appended once, with the next offset, and kept
for replay up to a byte budget (oldest evicted first). Each consumer (the
Generate caller, each subscription, a detached caller's place-holder) reads
through its own cursor. A cursor's window bounds how far it may fall behind
the log's head; what happens past the window is the cursor's policy:

* BLOCK: the producer waits (lossless). It resumes once every BLOCK cursor is
  back under its low-water mark, so the backend is pulled in bursts, not per
  event. A cursor with a ``max_hold`` (a subscriber's; the caller's own is
  flow control, and its backend is released after ``release_after_seconds``)
  that keeps the producer waiting longer than that is disconnected with
  RESOURCE_EXHAUSTED naming ``limits.max_hold_seconds``, and the producer
  goes on.
* SKIP: the cursor jumps to the latest event and reports a ``Gap``.
* DISCONNECT: the cursor fails with RESOURCE_EXHAUSTED.

In CREDIT flow a cursor also hands out an event only against a credit.
Cursors are ``cursor.py``; this module re-exports them with their policy and
window.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable

from llmrouter_server.errors import OutOfRange, ResourceExhausted, RouterError
from llmrouter_server.streams.cursor import Cursor, SlowPolicy, Window
from llmrouter_server.streams.events import Chunk, Event, EventKind

__all__ = ["EVENT_OVERHEAD_BYTES", "Cursor", "ReplayLog", "SlowPolicy", "Window", "event_size"]

EVENT_OVERHEAD_BYTES = 64
"""What an event costs beyond its text, for byte accounting (ids, offset, time)."""


def event_size(kind: EventKind) -> int:
    """The bytes an event counts for in windows and retention."""
    if isinstance(kind, Chunk):
        return EVENT_OVERHEAD_BYTES + len(kind.text.encode()) + 4 * len(kind.token_ids)
    return EVENT_OVERHEAD_BYTES


class ReplayLog:
    """Offset-numbered events of one generation, shared by all its consumers."""

    def __init__(
        self,
        stream_id: str,
        retain_bytes: int,
        on_append: Callable[[Event], None] | None = None,
    ) -> None:
        """An empty log.

        Args:
            stream_id: The generation's id, stamped on every event.
            retain_bytes: Event bytes kept for replay; the oldest go first.
            on_append: Told of every event once it is in the log.
        """
        self.stream_id = stream_id
        self.retain_bytes = retain_bytes
        self._on_append = on_append
        self.first_offset = 0
        self.next_offset = 0
        self.total_bytes = 0
        self.retained_bytes = 0
        self.finished = False
        self.abrupt = False
        self.error: RouterError | None = None
        self._events: deque[Event] = deque()
        self._starts: deque[int] = deque()
        self._sizes: deque[int] = deque()
        self._cursors: set[Cursor] = set()
        self._blocking: list[Cursor] = []
        """The BLOCK cursors among ``_cursors`` (read on every append)."""
        self._waiting: set[Cursor] = set()
        self._room = asyncio.Event()

    @property
    def cursors(self) -> int:
        """Consumers reading the log now."""
        return len(self._cursors)

    def append(self, kind: EventKind) -> Event:
        """Records an event at the next offset and wakes the readers."""
        event = Event(self.stream_id, self.next_offset, time.time(), kind)
        size = event_size(kind)
        self._events.append(event)
        self._starts.append(self.total_bytes)
        self._sizes.append(size)
        self.next_offset += 1
        self.total_bytes += size
        self.retained_bytes += size
        self._evict()
        self._wake()
        if self._on_append is not None:
            self._on_append(event)
        return event

    def close(self, error: RouterError | None = None, *, abrupt: bool = False) -> None:
        """Marks the log complete; readers get ``error`` after the last event.

        Args:
            error: What the generation failed with, if it failed.
            abrupt: The generation was cancelled or failed: its end (the last
                event, or the error) needs no credit, and a reader out of
                credits skips to it; what it skips stays for replay.
        """
        self.finished = True
        self.abrupt = abrupt
        self.error = error
        self._wake()
        self._room.set()

    def recent(self, count: int) -> list[Event]:
        """The last ``count`` retained events."""
        return list(itertools.islice(self._events, max(len(self._events) - count, 0), None))

    def cursor(
        self,
        offset: int,
        window: Window,
        policy: SlowPolicy = SlowPolicy.BLOCK,
        credits: int | None = None,
        max_hold: float | None = None,
    ) -> Cursor:
        """A new reader starting at ``offset`` (replay, then live).

        Args:
            offset: The first event to read.
            window: How far it may fall behind.
            policy: What happens when it falls further behind.
            credits: CREDIT flow: events it may take now; None in AUTO flow.
            max_hold: BLOCK: seconds it may keep the producer waiting before it
                is disconnected; None for as long as it likes.

        Raises:
            OutOfRange: The offset is past the end or already evicted; the
                message gives the earliest available offset.
        """
        if not self.first_offset <= offset <= self.next_offset:
            raise OutOfRange(
                f"offset {offset} of stream {self.stream_id!r} is not available; "
                f"the earliest available offset is {self.first_offset} and the next is "
                f"{self.next_offset}",
                stream_id=self.stream_id,
                offset=self.first_offset,
            )
        cursor = Cursor(self, offset, window, policy, credits, max_hold)
        self._cursors.add(cursor)
        if policy is SlowPolicy.BLOCK:
            self._blocking.append(cursor)
        return cursor

    def blocked(self) -> bool:
        """True while a BLOCK cursor is past its high-water mark."""
        for cursor in self._blocking:  # noqa: SIM110 - no generator before every pull
            if cursor.over_high():
                return True
        return False

    async def wait_room(self) -> None:
        """Waits while a BLOCK cursor is past its high-water mark.

        Once blocked, returns only when every BLOCK cursor is back at or under
        its low-water mark (or the log is closed). A cursor still above it
        when its ``max_hold`` has passed is disconnected.
        """
        if self.finished or not self.blocked():
            return
        self._room.clear()
        began = time.monotonic()
        while not self._room.is_set():
            holds = [c.max_hold for c in self._holders()]
            limit = min((h for h in holds if h is not None), default=None)
            left = None if limit is None else max(began + limit - time.monotonic(), 0.0)
            try:
                async with asyncio.timeout(left):
                    await self._room.wait()
            except TimeoutError:
                self._disconnect_holders(time.monotonic() - began)

    def _holders(self) -> list[Cursor]:
        """BLOCK cursors keeping the producer waiting (not back under low water)."""
        return [c for c in self._blocking if not c.at_low()]

    def _disconnect_holders(self, held: float) -> None:
        """Ends the readers that held the producer longer than their ``max_hold``."""
        for cursor in self._holders():
            if cursor.max_hold is not None and cursor.max_hold <= held:
                self._forget(cursor)  # the producer stops waiting for it now
                cursor.fail(
                    ResourceExhausted(
                        f"subscriber held stream {self.stream_id!r} back for {held:.1f} s, "
                        f"more than limits.max_hold_seconds ({cursor.max_hold:g} s): read "
                        "and grant credits sooner, or subscribe with SKIP or DISCONNECT"
                    )
                )
        self.moved()

    def event_at(self, offset: int) -> tuple[Event, int, int]:
        """The retained event at ``offset``, the bytes before it and its size."""
        index = offset - self.first_offset
        return self._events[index], self._starts[index], self._sizes[index]

    def bytes_before(self, offset: int) -> int:
        """Bytes appended before ``offset``."""
        if offset >= self.next_offset:
            return self.total_bytes
        return self._starts[offset - self.first_offset]

    def wait_for_append(self, cursor: Cursor) -> None:
        """Has ``cursor`` woken by the next append or close."""
        self._waiting.add(cursor)

    def moved(self) -> None:
        """Called when a cursor advanced or left; may let the producer go on."""
        if not self._room.is_set() and all(c.at_low() for c in self._blocking):
            self._room.set()

    def remove(self, cursor: Cursor) -> None:
        """Forgets a cursor."""
        self._forget(cursor)
        self.moved()

    def _forget(self, cursor: Cursor) -> None:
        self._cursors.discard(cursor)
        if cursor in self._blocking:
            self._blocking.remove(cursor)

    def _wake(self) -> None:
        waiting, self._waiting = self._waiting, set()
        for cursor in waiting:
            cursor.wake()

    def _evict(self) -> None:
        if self.retained_bytes <= self.retain_bytes:
            return
        # Never evict what a BLOCK cursor has not read, nor the latest event.
        keep_from = min((c.offset for c in self._blocking), default=self.next_offset - 1)
        keep_from = min(keep_from, self.next_offset - 1)
        while self.retained_bytes > self.retain_bytes and self.first_offset < keep_from:
            self._events.popleft()
            self._starts.popleft()
            self.retained_bytes -= self._sizes.popleft()
            self.first_offset += 1
