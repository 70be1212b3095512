"""The gate a generation's producer passes before each pull from its route.

The producer waits while the generation is paused or a lossless consumer is
past its window (``log.py``). A producer that waits too long is told so, and
gives its backend back (the llama.cpp instance, the HTTP connection, and its
slot among the backend's ``max_concurrency``); it continues later on a new
backend stream. Too long is ``release_after`` while no generation whose
caller reads waits for a slot of its backend (``routing/slots.py``), and
``release_contended_after`` while one does: a caller that does not read must
not keep a scarce slot from one that does. For the same reason a generation
whose caller has left an event unread for ``release_contended_after`` gives
way to such a waiter even before its window is full, and continues only once
its caller has read what it had.

``release_contended_after`` counts from when the producer stopped or its
caller stopped reading, whichever came first: a generation stalled that long
already gives its slot back as soon as a reader queues for it. One holder
gives way per waiting reader (``SlotUser.give_way``); the others keep their
slots while nobody else wants them. A caller that keeps reading is not
stalled that long: its gate opens again once it has read half a window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from llmrouter_server.routing.slots import SlotUser
from llmrouter_server.streams.log import Cursor, ReplayLog

LOOK_AFTER_SECONDS = 0.001
"""How long after a reader queues a holder due to give way looks whether it
reads: time for the reader's writer to take its ``started`` and ``queued``
events, appended as it queued (until then it seems not to read)."""

CALLER_POLL_SECONDS = 0.25
"""How often a generation that gave way to a reader looks whether its caller
has read again (the log tells no one when a cursor moves under its window)."""


def keeps_up(cursor: Cursor | None) -> bool:
    """True unless the caller has left events unread: more than the latest one, or
    the latest one with no credit to take it. A generation with no caller (a
    detached one, which runs ahead into its replay budget) counts as keeping up.

    One unread event is allowed: a ``queued`` event appended a moment ago is
    taken by a caller that reads as soon as its writer runs.
    """
    if cursor is None:
        return True
    unread = cursor.lag()[0]
    return unread == 0 or (unread == 1 and cursor.credits != 0)


def unread_for(cursor: Cursor | None, now: float) -> float:
    """Seconds the oldest event the caller has not read has waited for it (``now``
    is ``time.time()``); 0 when it has read them all, or there is no caller."""
    if cursor is None:
        return 0.0
    log = cursor.log
    offset = max(cursor.offset, log.first_offset)
    if offset >= log.next_offset:
        return 0.0
    event, _, _ = log.event_at(offset)
    return max(now - event.time, 0.0)


def _nobody() -> Cursor | None:
    return None


class Gate:
    """Whether the producer may pull: not paused, every lossless cursor has room,
    and no caller that reads waits for the slot of one that does not."""

    def __init__(
        self,
        log: ReplayLog,
        release_after: float,
        release_contended_after: float | None = None,
        user: SlotUser | None = None,
        caller: Callable[[], Cursor | None] = _nobody,
    ) -> None:
        """Sets up an open gate.

        Args:
            log: The generation's replay log, whose lossless cursors hold it.
            release_after: Seconds a producer waits before it gives its backend back.
            release_contended_after: The same while a generation whose caller
                reads waits for a slot of its backend; None is ``release_after``.
            user: The generation at its backends' slots, which says who waits;
                None never counts as contended.
            caller: The caller's cursor now, if a caller is attached.
        """
        self._log = log
        self._release_after = release_after
        self._contended_after = (
            release_after if release_contended_after is None else release_contended_after
        )
        self._user = user
        self._caller = caller
        self._gave_way = False
        self._unpaused = asyncio.Event()
        self._unpaused.set()

    def pause(self) -> None:
        """Holds the producer before its next pull."""
        self._unpaused.clear()

    def resume(self) -> None:
        """Lets a paused producer go on."""
        self._unpaused.set()

    def is_open(self) -> bool:
        """True when neither a pause nor a lossless consumer's window holds the
        producer (whether to give way to a reader is weighed in ``passes``)."""
        return self._unpaused.is_set() and not self._log.blocked()

    async def passes(self) -> bool:
        """Waits until the producer may pull; False when it should give its backend
        back instead: it waited ``release_after``, or ``release_contended_after``
        while a generation whose caller reads waits for its slot, or its caller
        has not read for that long while one waits."""
        if self.is_open():
            if self._gives_way():
                self._gave_way = True
                return False
            return True
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline = now + self._release_after
        contended = now - self._unread_for() + self._contended_after
        check_now = True
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline) as timer:
                        unwatch = self._watch(timer, contended, check_now=check_now)
                        try:
                            await self.wait()
                        finally:
                            unwatch()
                except TimeoutError:
                    if loop.time() >= deadline or self._give_way():
                        return False
                    check_now = False  # only waiters that do not read: wait for the next
                    continue
                return True
        finally:
            if self._user is not None:
                self._user.unwake()  # woken, then opened (or cancelled) before it looked

    async def wait(self) -> None:
        """Waits, however long, until the producer may pull (after giving way to a
        reader, until its caller has read what it had)."""
        if self._gave_way:
            # No event says when a cursor moves under its window: look now and then.
            while not keeps_up(self._caller()):  # noqa: ASYNC110
                await asyncio.sleep(CALLER_POLL_SECONDS)
            self._gave_way = False
        while True:
            await self._unpaused.wait()
            await self._log.wait_room()
            if self._unpaused.is_set():
                return

    def _unread_for(self) -> float:
        return unread_for(self._caller(), time.time())

    def _give_way(self) -> bool:
        return self._user is not None and self._user.give_way()

    def _gives_way(self) -> bool:
        """True when the caller has not read for ``release_contended_after`` while a
        generation whose caller reads waits for the slot (cheapest checks first)."""
        user = self._user
        if user is None or not user.wanted():
            return False
        return self._unread_for() >= self._contended_after and user.give_way()

    def _watch(
        self, timer: asyncio.Timeout, contended: float, *, check_now: bool
    ) -> Callable[[], None]:
        """Brings the timer forward to ``contended`` once a generation whose caller
        reads waits (looked at again when the timer fires)."""
        user = self._user
        loop = asyncio.get_running_loop()
        if user is None or contended >= (timer.when() or float("inf")):
            return _nothing

        def check() -> None:
            when = timer.when()
            if timer.expired() or (when is not None and when <= contended):
                return  # already due then
            if contended > loop.time():
                if user.wanted():
                    timer.reschedule(contended)  # looks then
            elif user.wake():  # due now: one holder per reader looks, a moment later
                timer.reschedule(loop.time() + LOOK_AFTER_SECONDS)

        if check_now:
            check()
        return user.watch(check)


def _nothing() -> None:
    """Nothing to stop."""
