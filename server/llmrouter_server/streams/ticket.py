"""A generation's admission ticket and the line of tickets one identity's limits hold back.

A ticket is admitted when it is made (the limits allow it), or waits in its
identity's line, first in first out. Whoever changes what the line may admit
(a generation ending and refunding its tokens, a waiter giving up) admits the
tickets at the head that fit and wakes the others to read their new place;
the head also wakes when its bucket will have room. ``finish`` ends a
ticket's admission once, however its generation ended.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable

from llmrouter_server.auth.quota import Quota
from llmrouter_server.errors import ResourceExhausted


class Line:
    """One identity's quota and the tickets waiting for it, first in first out."""

    def __init__(self, key: str, quota: Quota, on_idle: Callable[[Line], None]) -> None:
        self.key = key
        self.quota = quota
        self.waiting: deque[Ticket] = deque()
        self.changed = asyncio.Event()
        self._on_idle = on_idle

    def position(self, ticket: Ticket) -> int:
        """The ticket's place in line; 1 is next."""
        return self.waiting.index(ticket) + 1

    def notify(self) -> None:
        """Wakes every waiter to look at its place again."""
        self.changed.set()
        self.changed = asyncio.Event()

    def pump(self) -> ResourceExhausted | None:
        """Admits the tickets at the head that fit; why the next does not, if one waits."""
        admitted = False
        refusal = None
        while self.waiting:
            head = self.waiting[0]
            refusal = self.quota.refusal(head.tokens)
            if refusal is not None:
                break
            self.waiting.popleft()
            self.quota.take(head.tokens)
            head.admitted = True
            admitted = True
        if admitted:
            self.notify()
        return refusal

    def leave(self, ticket: Ticket) -> None:
        """Takes a waiting ticket out of line (it gave up); the next may fit now."""
        self.waiting.remove(ticket)
        self.notify()
        self.pump()
        self.check_idle()

    def settle(self, ticket: Ticket, used: int) -> None:
        """Ends an admitted ticket's generation: frees its place and refunds its tokens."""
        self.quota.settle(ticket.tokens, used)
        self.pump()
        self.check_idle()

    def idle(self) -> bool:
        """True when nobody waits and the quota is as new."""
        return not self.waiting and self.quota.idle()

    def check_idle(self) -> None:
        """Lets the admission forget this identity when it is idle."""
        if self.idle():
            self._on_idle(self)


class Ticket:
    """One generation's admission: waited for before routing, finished once it stops.

    Attributes:
        tokens: The output tokens reserved.
        admitted: True once the identity's limits let the generation go on.
    """

    def __init__(
        self, line: Line | None, tokens: int, deadline: float | None, *, admitted: bool = False
    ) -> None:
        self.tokens = tokens
        self.admitted = admitted or line is None
        self._line = line
        self._deadline = deadline
        self._finished = False

    async def wait(self) -> AsyncGenerator[int, None]:
        """Waits until admitted, yielding the place in line each time it changes.

        Yields nothing when admitted already.

        Raises:
            ResourceExhausted: The deadline passed first (the ticket left the line).
        """
        line = self._line
        shown = 0
        while line is not None and not self.admitted:
            changed = line.changed
            position = line.position(self)
            if position != shown:
                shown = position
                yield position
                continue
            refusal = line.pump()
            if self.admitted or changed is not line.changed:
                continue
            head_wait = refusal.retry_after if refusal and position == 1 else None
            if not await _changed_within(changed, _soonest(head_wait, self._deadline)):
                self._expire(line, refusal)

    def finish(self, used: int) -> None:
        """Ends the admission: refunds unused tokens, or leaves the line; once.

        Args:
            used: Output tokens the generation used (every attempt's completion tokens).
        """
        if self._finished:
            return
        self._finished = True
        line = self._line
        if line is None:
            return
        if self.admitted:
            line.settle(self, used)
        else:
            line.leave(self)

    def _expire(self, line: Line, refusal: ResourceExhausted | None) -> None:
        if self._deadline is None or time.monotonic() < self._deadline:
            return  # the head's bucket has room now: look again
        ahead = line.position(self) - 1
        self.finish(0)
        why = refusal.message if refusal is not None else "the identity's limits"
        if ahead:
            why = f"{ahead} requests ahead of it; the first waits for {why}"
        raise ResourceExhausted(
            f"the call's deadline passed while the request waited (on_limit: queue): {why}",
            retry_after=refusal.retry_after if refusal is not None and not ahead else None,
        )


def _soonest(wait: float | None, deadline: float | None) -> float | None:
    """Seconds until the earlier of ``wait`` from now and ``deadline``; None for neither."""
    left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
    if wait is None:
        return left
    return wait if left is None else min(wait, left)


async def _changed_within(changed: asyncio.Event, seconds: float | None) -> bool:
    """Waits for ``changed``; False when ``seconds`` passed first."""
    try:
        async with asyncio.timeout(seconds):
            await changed.wait()
    except TimeoutError:
        return False
    return True
