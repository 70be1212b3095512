"""A FIFO concurrency limit that tells waiters their place in line.

Overflow policy: wait in arrival order. Each waiter learns its position (1 is
next) when it joins and whenever someone ahead of it leaves.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field


@dataclass(eq=False)
class _Waiter:
    granted: asyncio.Future[None]
    moved: asyncio.Event = field(default_factory=asyncio.Event)


class Slots:
    """At most ``limit`` holders at once; the rest queue in FIFO order."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._waiters: deque[_Waiter] = deque()

    @property
    def waiting(self) -> int:
        """Holders in line."""
        return len(self._waiters)

    async def acquire(self) -> AsyncGenerator[int, None]:
        """Takes a slot, yielding the queue position each time it changes.

        Yields nothing when a slot is free at once. The slot is held once the
        iteration ends; the caller must ``release`` it. If the iteration is
        abandoned (closed or cancelled) no slot is held.
        """
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
            return
        waiter = _Waiter(asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
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
            self.in_use += 1
            waiter.granted.set_result(None)
            self._notify_all()

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
            self._notify_all()
        elif waiter.granted.done():
            self.release()

    def _notify_all(self) -> None:
        for waiter in self._waiters:
            waiter.moved.set()
