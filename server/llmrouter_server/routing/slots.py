"""A concurrency limit with a bounded queue that tells waiters their place.

Overflow policy: wait, up to ``max_queued`` waiters; a new waiter beyond that
is refused with RESOURCE_EXHAUSTED (``backends.X.max_queued``), and so is one
whose tenant already holds its share of the queue (``queue_share`` of
``max_queued``, rounded up), so one tenant cannot fill it.

Order: a slot that frees goes to the first waiter, in arrival order, whose
caller reads what it is sent (its ``SlotUser.reads``); a generation whose
caller has left its ``started`` or ``queued`` events unread is passed over
while such a waiter is queued, and served in arrival order when none is. Each
waiter learns its position (1 is next, in that order) when it joins and
whenever it changes.

A generation's gate asks its ``SlotUser`` whether a generation whose caller
reads waits for a backend it may hold (``give_way``), and is told when one
joins a queue or a slot is handed over (``watch``): a generation whose caller
does not read, or that is paused, then gives its slot back sooner
(``streams/gate.py``), one for each such waiter.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass, field
from itertools import chain

from llmrouter_server.errors import ResourceExhausted

_EPSILON = 1e-9
"""Float slack when a share of the queue is rounded up (0.3 * 10 is 3, not 4)."""


def _reads_everything() -> bool:
    return True


class SlotUser:
    """One generation at the slots of its route's backends.

    The slots ask it whether its caller reads (``reads``), count the queues it
    waits in (``queued``) and tell it when it gets a slot (``took``); the
    generation says when an attempt ends (``holding``); its gate asks whether
    it should give its slot to a generation whose caller reads (``give_way``),
    is told when one may have come (``watch``), and books its turn to look
    (``wake``) so that one reader does not wake every holder.
    """

    def __init__(
        self, slots: Iterable[Slots], reads: Callable[[], bool] = _reads_everything
    ) -> None:
        """A generation that holds nothing and waits for nothing yet.

        Args:
            slots: The slots of every backend its route may use.
            reads: True while the generation's caller takes what it is sent.
        """
        self.reads = reads
        self.queued = 0
        """Queues the generation waits in now."""
        self._slots = tuple(dict.fromkeys(slots))
        self._held: set[Slots] = set()
        self._waking: Slots | None = None

    @property
    def holding(self) -> bool:
        """True while the generation holds a slot it could give: from when it gets
        one (``took``) for as long as the generation says it is in the attempt
        (an attempt's start and its deltas; a failure or a queue position ends it)."""
        return bool(self._held)

    @holding.setter
    def holding(self, holding: bool) -> None:
        if not holding:
            self._held.clear()

    def took(self, slots: Slots) -> None:
        """The generation got a slot of ``slots``."""
        self._held.add(slots)

    def wanted(self) -> bool:
        """True when a generation whose caller reads waits for a slot of a backend
        this one holds, with no slot offered to it yet, and this one waits for
        none. Cheap: as the queue was ranked at its last change; ``give_way`` looks
        again."""
        return self._free() and any(slots.wanted() for slots in self._held)

    def wake(self) -> bool:
        """Books this holder's turn to look whether to give way (``wanted``, and no
        other holder booked for that reader yet); True when booked: ``give_way``
        or ``unwake`` must follow."""
        if self._waking is None and self._free():
            for slots in self._held:
                if slots.wanted():
                    slots.waking += 1
                    self._waking = slots
                    return True
        return False

    def unwake(self) -> None:
        """Gives a booked turn back (the holder looked, or no longer needs to)."""
        if self._waking is not None:
            self._waking.waking -= 1
            self._waking = None

    def give_way(self) -> bool:
        """True when a generation whose caller reads waits for a slot of a backend
        this one may hold, and no other holder has offered it theirs yet: this one
        offers (``Slots.offer``) and must then give its slot back."""
        self.unwake()
        return self._free() and any(slots.offer() for slots in self._held)

    def _free(self) -> bool:
        """True when the generation holds a slot to give, and waits for none."""
        return bool(self._held) and not self.queued

    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Calls ``callback`` whenever a generation joins the queue of one of these
        backends or a slot is handed over; returns the function that stops it."""
        for slots in self._slots:
            slots.watchers.add(callback)

        def stop() -> None:
            for slots in self._slots:
                slots.watchers.discard(callback)

        return stop


@dataclass(frozen=True, slots=True)
class QueueClaim:
    """Who asks for a place in a backend's queue, and how much of it they may hold."""

    tenant: str = ""
    """The tenant whose waiting places are counted together."""
    share: float = 1.0
    """The fraction of ``max_queued`` the tenant's waiters may fill, rounded up."""
    setting: str = "limits.queue_share"
    """The configuration key of ``share``, named when it refuses a place."""
    user: SlotUser | None = None
    """The generation asking: whether its caller reads, what it waits for. None is
    a caller that reads."""


ANYONE = QueueClaim()
"""A claim of no tenant in particular, with the whole queue: only the bound applies."""


@dataclass(eq=False)
class _Waiter:
    granted: asyncio.Future[None]
    tenant: str
    user: SlotUser | None
    position: int = 0
    """Its place in the order it would be served now."""
    told: int = 0
    """The place it was last told."""
    moved: asyncio.Event = field(default_factory=asyncio.Event)

    def reads(self) -> bool:
        return self.user is None or self.user.reads()


class Slots:
    """At most ``limit`` holders at once; the rest queue, readers first, within bounds."""

    def __init__(self, limit: int, max_queued: int | None = None, name: str = "") -> None:
        """A free set of slots.

        Args:
            limit: Holders at once.
            max_queued: Waiters at once; None is unbounded.
            name: The backend's name, for messages.
        """
        self.limit = limit
        self.max_queued = max_queued
        self.name = name
        self.in_use = 0
        self.watchers: set[Callable[[], None]] = set()
        """Called when a generation joins the queue or a slot is handed over."""
        self.waking = 0
        """Holders woken to look whether to give way (``SlotUser.wake``)."""
        self._readers = 0
        self._offered = 0
        self._waiters: deque[_Waiter] = deque()
        self._tenants: dict[str, int] = {}

    @property
    def waiting(self) -> int:
        """Holders in line."""
        return len(self._waiters)

    def waiting_for(self, tenant: str) -> int:
        """Places in line held by ``tenant``'s generations."""
        return self._tenants.get(tenant, 0)

    def wanted(self) -> bool:
        """True when, as ranked at the last change, a waiter whose caller reads has
        no slot offered to it, nor a holder on its way to offer one."""
        return self._readers > self._offered + self.waking

    def offer(self) -> bool:
        """A holder offers its slot to a waiter whose caller reads: True when such a
        waiter (looked at now) has no slot offered yet; the holder must then release
        its own.

        One release for each such waiter, not one for every holder that could:
        the slots of the others stay with them while nobody else wants them.
        """
        if self._readers <= self._offered:
            return False  # none, as ranked at the last change
        self._readers = sum(1 for waiter in self._waiters if waiter.reads())
        if self._readers > self._offered:
            self._offered += 1
            return True
        return False

    async def acquire(
        self, claim: QueueClaim = ANYONE, *, checked: bool = True
    ) -> AsyncGenerator[int, None]:
        """Takes a slot, yielding the queue position each time it changes.

        Yields nothing when a slot is free at once. The slot is held once the
        iteration ends; the caller must ``release`` it. If the iteration is
        abandoned (closed or cancelled) no slot is held.

        Args:
            claim: Whose place it is, and how much of the queue its tenant may hold.
            checked: False lets the waiter in past the bound and the share (a
                generation already admitted, coming back for another attempt).

        Raises:
            ResourceExhausted: No slot is free and the queue is full, or the
                claim's tenant holds its share of it; the message names the key.
        """
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
            if claim.user is not None:
                claim.user.took(self)
            return
        if checked:
            self._check(claim)
        waiter = _Waiter(asyncio.get_running_loop().create_future(), claim.tenant, claim.user)
        self._join(waiter)
        try:
            while not waiter.granted.done():
                waiter.moved.clear()
                waiter.told = waiter.position
                yield waiter.position
                await self._next_change(waiter)
        except BaseException:
            self._abandon(waiter)
            raise

    def release(self) -> None:
        """Returns a slot, handing it to the next waiter if there is one."""
        self.in_use -= 1
        self._offered = max(self._offered - 1, 0)  # an offer kept (or made moot)
        if self._waiters:
            waiter = self._next()
            self._waiters.remove(waiter)
            self._left(waiter)
            self.in_use += 1
            if waiter.user is not None:
                waiter.user.took(self)  # holds it even before it pulls again
            waiter.granted.set_result(None)
            self._rank()
            self._tell_watchers()

    def _next(self) -> _Waiter:
        """The first waiter whose caller reads; the first waiter if none does."""
        return next((w for w in self._waiters if w.reads()), self._waiters[0])

    def _check(self, claim: QueueClaim) -> None:
        if self.max_queued is None:
            return
        waiting = len(self._waiters)
        if waiting >= self.max_queued:
            raise ResourceExhausted(
                f"backend {self.name}: {waiting} generations already queued "
                f"(backends.{self.name}.max_queued)"
            )
        allowed = math.ceil(claim.share * self.max_queued - _EPSILON)
        held = self.waiting_for(claim.tenant)
        if held >= allowed:
            raise ResourceExhausted(
                f"backend {self.name}: tenant {claim.tenant!r} already holds {held} of the "
                f"{self.max_queued} queued places, its share ({claim.setting}: {claim.share:g} "
                f"of backends.{self.name}.max_queued)"
            )

    def _join(self, waiter: _Waiter) -> None:
        self._waiters.append(waiter)
        self._tenants[waiter.tenant] = self._tenants.get(waiter.tenant, 0) + 1
        if waiter.user is not None:
            waiter.user.queued += 1
        self._rank()
        self._tell_watchers()

    def _left(self, waiter: _Waiter) -> None:
        count = self._tenants[waiter.tenant] - 1
        if count:
            self._tenants[waiter.tenant] = count
        else:
            del self._tenants[waiter.tenant]
        if waiter.user is not None:
            waiter.user.queued -= 1

    def _rank(self) -> None:
        """Numbers the waiters in the order they would be served now (readers
        first, each group in arrival order); wakes the readers whose number
        changed. A caller that does not read is not told (its ``queued`` events
        would only pile up unread): it learns its place at the first change after
        it reads again."""
        reading = [waiter.reads() for waiter in self._waiters]
        self._readers = sum(reading)
        first = (w for w, reads in zip(self._waiters, reading, strict=True) if reads)
        then = (w for w, reads in zip(self._waiters, reading, strict=True) if not reads)
        for position, waiter in enumerate(chain(first, then), start=1):
            waiter.position = position
            if position <= self._readers and waiter.told != position:
                waiter.moved.set()

    def _tell_watchers(self) -> None:
        for watcher in list(self.watchers):
            watcher()

    async def _next_change(self, waiter: _Waiter) -> None:
        moved: asyncio.Future[object] = asyncio.ensure_future(waiter.moved.wait())
        granted: asyncio.Future[object] = waiter.granted  # type: ignore[assignment]
        try:
            await asyncio.wait({granted, moved}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            moved.cancel()

    def _abandon(self, waiter: _Waiter) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)
            self._left(waiter)
            self._rank()
        elif waiter.granted.done():
            self.release()
