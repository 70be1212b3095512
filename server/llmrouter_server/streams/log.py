"""The replay log of one generation and the cursors that read it.

Every event of a generation is appended once, with the next offset, and kept
for replay up to a byte budget (oldest evicted first). Each consumer (the
Generate caller, each subscription, a detached caller's place-holder) reads
through its own cursor. A cursor's window bounds how far it may fall behind
the log's head; what happens past the window is the cursor's policy:

* BLOCK: the producer waits (lossless). It resumes once every BLOCK cursor is
  back under its low-water mark, so the backend is pulled in bursts, not per
  event.
* SKIP: the cursor jumps to the latest event and reports a ``Gap``.
* DISCONNECT: the cursor fails with RESOURCE_EXHAUSTED.

In CREDIT flow a cursor also hands out an event only against a credit.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

from llmrouter_server.errors import (
    FailedPrecondition,
    InvalidArgument,
    OutOfRange,
    ResourceExhausted,
    RouterError,
)
from llmrouter_server.streams.events import Chunk, Event, EventKind, Gap

EVENT_OVERHEAD_BYTES = 64
"""What an event costs beyond its text, for byte accounting (ids, offset, time)."""


def event_size(kind: EventKind) -> int:
    """The bytes an event counts for in windows and retention."""
    if isinstance(kind, Chunk):
        return EVENT_OVERHEAD_BYTES + len(kind.text.encode()) + 4 * len(kind.token_ids)
    return EVENT_OVERHEAD_BYTES


class SlowPolicy(StrEnum):
    """What happens to a consumer that falls behind by more than its window."""

    BLOCK = "block"
    SKIP = "skip"
    DISCONNECT = "disconnect"


@dataclass(frozen=True, slots=True)
class Window:
    """How far a cursor may fall behind the log's head, in events and bytes."""

    high_events: int = 64
    """Past this many unread events the policy applies."""
    low_events: int = 32
    """A blocked producer resumes once the lag is at most this many events."""
    high_bytes: int = 64 * 1024
    """Past this many unread bytes the policy applies."""
    low_bytes: int = 32 * 1024
    """A blocked producer resumes once the lag is at most this many bytes."""


class ReplayLog:
    """Offset-numbered events of one generation, shared by all its consumers."""

    def __init__(self, stream_id: str, retain_bytes: int) -> None:
        self.stream_id = stream_id
        self.retain_bytes = retain_bytes
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
    ) -> Cursor:
        """A new reader starting at ``offset`` (replay, then live).

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
        cursor = Cursor(self, offset, window, policy, credits)
        self._cursors.add(cursor)
        return cursor

    def blocked(self) -> bool:
        """True while a BLOCK cursor is past its high-water mark."""
        return any(c.over_high() for c in self._blocking())

    async def wait_room(self) -> None:
        """Waits while a BLOCK cursor is past its high-water mark.

        Once blocked, returns only when every BLOCK cursor is back at or under
        its low-water mark (or the log is closed).
        """
        if self.finished or not self.blocked():
            return
        self._room.clear()
        await self._room.wait()

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
        if not self._room.is_set() and all(c.at_low() for c in self._blocking()):
            self._room.set()

    def remove(self, cursor: Cursor) -> None:
        """Forgets a cursor."""
        self._cursors.discard(cursor)
        self.moved()

    def _blocking(self) -> list[Cursor]:
        return [c for c in self._cursors if c.policy is SlowPolicy.BLOCK]

    def _wake(self) -> None:
        waiting, self._waiting = self._waiting, set()
        for cursor in waiting:
            cursor.wake()

    def _evict(self) -> None:
        # Never evict what a BLOCK cursor has not read, nor the latest event.
        keep_from = min((c.offset for c in self._blocking()), default=self.next_offset - 1)
        keep_from = min(keep_from, self.next_offset - 1)
        while self.retained_bytes > self.retain_bytes and self.first_offset < keep_from:
            self._events.popleft()
            self._starts.popleft()
            self.retained_bytes -= self._sizes.popleft()
            self.first_offset += 1


class Cursor:
    """One consumer's position in a log, with its window, policy and credits."""

    def __init__(
        self,
        log: ReplayLog,
        offset: int,
        window: Window,
        policy: SlowPolicy,
        credits: int | None,
    ) -> None:
        self.log = log
        self.offset = offset
        self.window = window
        self.policy = policy
        self.consumed_bytes = log.bytes_before(offset)
        self._credits = credits
        self._wakeup = asyncio.Event()
        self._failure: RouterError | None = None

    @property
    def credits(self) -> int | None:
        """Events this cursor may still hand out in CREDIT flow; None in AUTO."""
        return self._credits

    def lag(self) -> tuple[int, int]:
        """Unread events and bytes."""
        return self.log.next_offset - self.offset, self.log.total_bytes - self.consumed_bytes

    def over_high(self) -> bool:
        """True past the window's high-water mark."""
        events, size = self.lag()
        return events > self.window.high_events or size > self.window.high_bytes

    def at_low(self) -> bool:
        """True at or under the window's low-water mark."""
        events, size = self.lag()
        return events <= self.window.low_events and size <= self.window.low_bytes

    def grant(self, credits: int) -> None:
        """Allows ``credits`` more events in CREDIT flow.

        Raises:
            InvalidArgument: ``credits`` is not positive.
            FailedPrecondition: The consumer is in AUTO flow.
        """
        if credits <= 0:
            raise InvalidArgument("grant.credits", "must be positive")
        if self._credits is None:
            raise FailedPrecondition("grant: credits apply only to FLOW_MODE_CREDIT")
        self._credits = (self._credits or 0) + credits
        self._wakeup.set()

    def fail(self, error: RouterError) -> None:
        """Ends this reader with ``error`` (the generation itself goes on)."""
        self._failure = error
        self._wakeup.set()

    def wake(self) -> None:
        """Wakes a waiting ``next``."""
        self._wakeup.set()

    def close(self) -> None:
        """Stops reading; the log no longer waits for this cursor."""
        self.log.remove(self)

    async def next(self) -> Event | None:
        """The next event to send; None after the last one.

        Raises:
            RouterError: The error the generation ended with.
            ResourceExhausted: A DISCONNECT cursor fell too far behind.
            RouterError: The error given to ``fail``.
        """
        while self._blocked():
            self._wakeup.clear()
            self.log.wait_for_append(self)
            await self._wakeup.wait()
        if self._failure is not None:
            raise self._failure
        if self._credits == 0 and self.log.abrupt:
            return self._skip_to_end()
        if self.offset >= self.log.next_offset:
            if self.log.error is not None:
                raise self.log.error
            return None
        event = self._overflow() if self._behind() else self._take()
        if self._credits is not None:
            self._credits -= 1
        return event

    def _blocked(self) -> bool:
        if self._failure is not None:
            return False
        if self.offset >= self.log.next_offset:
            return not self.log.finished
        return self._credits == 0 and not self.log.abrupt

    def _skip_to_end(self) -> Event | None:
        """Out of credits at a cancel or failure: its end comes without one."""
        if self.log.error is not None:
            self.offset = self.log.next_offset
            raise self.log.error
        last = self.log.next_offset - 1
        if self.offset > last:
            return None
        self.offset = last
        self.consumed_bytes = self.log.bytes_before(last)
        return self._take()

    def _behind(self) -> bool:
        return self.offset < self.log.first_offset or (
            self.policy is not SlowPolicy.BLOCK and self.over_high()
        )

    def _take(self) -> Event:
        event, start, size = self.log.event_at(self.offset)
        self.offset += 1
        self.consumed_bytes = start + size
        self.log.moved()
        return event

    def _overflow(self) -> Event:
        if self.policy is SlowPolicy.DISCONNECT:
            raise ResourceExhausted(
                f"subscriber fell more than its window behind stream {self.log.stream_id!r}"
            )
        latest = self.log.next_offset - 1
        gap = Gap(from_offset=self.offset, to_offset=latest - 1)
        self.offset = latest
        self.consumed_bytes = self.log.bytes_before(latest)
        self.log.moved()
        return Event(self.log.stream_id, gap.to_offset, time.time(), gap)
