"""One consumer's reading of a replay log: its position, window, policy and credits.

A cursor hands out the log's events in order. Past its window (unread events
or bytes) its ``SlowPolicy`` applies: BLOCK holds the producer back (the log
waits for it, up to the cursor's ``max_hold``), SKIP jumps to the latest
event with a ``Gap``, DISCONNECT fails. In CREDIT flow it hands out an event
only against a credit, except the end of a cancelled or failed generation.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from llmrouter_server.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    RouterError,
)
from llmrouter_server.streams.events import Event, Gap

if TYPE_CHECKING:
    from llmrouter_server.streams.log import ReplayLog


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


class Cursor:
    """One consumer's position in a log, with its window, policy and credits."""

    def __init__(  # noqa: PLR0913 - a reader is all of these; ReplayLog.cursor makes it
        self,
        log: ReplayLog,
        offset: int,
        window: Window,
        policy: SlowPolicy,
        credits: int | None,
        max_hold: float | None = None,
    ) -> None:
        self.log = log
        self.offset = offset
        self.window = window
        self.policy = policy
        self.max_hold = max_hold
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
        """True past the window's high-water mark (asked before every pull)."""
        log, window = self.log, self.window
        return (
            log.next_offset - self.offset > window.high_events
            or log.total_bytes - self.consumed_bytes > window.high_bytes
        )

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
