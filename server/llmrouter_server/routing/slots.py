"""A FIFO concurrency limit with a bounded queue that tells waiters their place.

Overflow policy: wait in arrival order, up to ``max_queued`` waiters; a new
waiter beyond that is refused with RESOURCE_EXHAUSTED (``backends.X.max_queued``),
and so is one whose tenant already holds its share of the queue
(``queue_share`` of ``max_queued``, rounded up), so one tenant cannot fill
it. Each waiter learns its position (1 is next) when it joins and whenever
someone ahead of it leaves.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from llmrouter_server.errors import ResourceExhausted

_EPSILON = 1e-9
"""Float slack when a share of the queue is rounded up (0.3 * 10 is 3, not 4)."""


@dataclass(frozen=True, slots=True)
class QueueClaim:
    """Who asks for a place in a backend's queue, and how much of it they may hold."""

    tenant: str = ""
    """The tenant whose waiting places are counted together."""
    share: float = 1.0
    """The fraction of ``max_queued`` the tenant's waiters may fill, rounded up."""
    setting: str = "limits.queue_share"
    """The configuration key of ``share``, named when it refuses a place."""


ANYONE = QueueClaim()
"""A claim of no tenant in particular, with the whole queue: only the bound applies."""


@dataclass(eq=False)
class _Waiter:
    granted: asyncio.Future[None]
    tenant: str
    moved: asyncio.Event = field(default_factory=asyncio.Event)


class Slots:
    """At most ``limit`` holders at once; the rest queue in FIFO order, within bounds."""

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
        self._waiters: deque[_Waiter] = deque()
        self._tenants: dict[str, int] = {}

    @property
    def waiting(self) -> int:
        """Holders in line."""
        return len(self._waiters)

    def waiting_for(self, tenant: str) -> int:
        """Places in line held by ``tenant``'s generations."""
        return self._tenants.get(tenant, 0)

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
            return
        if checked:
            self._check(claim)
        waiter = _Waiter(asyncio.get_running_loop().create_future(), claim.tenant)
        self._join(waiter)
        try:
            while not waiter.granted.done():
                waiter.moved.clear()
                yield self._waiters.index(waiter) + 1
                await self._next_change(waiter)
        except BaseException:
            self._abandon(waiter)
            raise

    def release(self) -> None:
        """Returns a slot, handing it to the first waiter if there is one."""
        self.in_use -= 1
        if self._waiters:
            waiter = self._waiters.popleft()
            self._left(waiter)
            self.in_use += 1
            waiter.granted.set_result(None)
            self._notify_all()

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

    def _left(self, waiter: _Waiter) -> None:
        count = self._tenants[waiter.tenant] - 1
        if count:
            self._tenants[waiter.tenant] = count
        else:
            del self._tenants[waiter.tenant]

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
            self._notify_all()
        elif waiter.granted.done():
            self.release()

    def _notify_all(self) -> None:
        for waiter in self._waiters:
            waiter.moved.set()
