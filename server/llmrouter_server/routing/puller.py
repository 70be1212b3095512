"""Pulls one attempt's items in a task, so several attempts can be awaited at once.

RACE and MERGE wait on several attempts together; each has at most one pull
in flight, so a consumer that stops pulling still stops every backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field

from llmrouter_server.routing.attempt import AttemptItem


@dataclass(eq=False)
class Puller:
    """One attempt and its pull in flight."""

    index: int
    """The target's index in the route."""
    number: int
    """The attempt number."""
    items: AsyncGenerator[AttemptItem, None]
    """The attempt."""
    pull: asyncio.Task[AttemptItem] = field(init=False)
    """The pull in flight (or done)."""

    def arm(self) -> None:
        """Starts pulling the next item."""
        self.pull = asyncio.ensure_future(_next(self.items))


async def _next(items: AsyncGenerator[AttemptItem, None]) -> AttemptItem:
    return await anext(items)


async def wait_any(pullers: Iterable[Puller], within: float | None = None) -> list[Puller]:
    """The pullers whose pull is done, waiting until one is (at most ``within`` seconds)."""
    waiting = {puller.pull: puller for puller in pullers}
    done, _ = await asyncio.wait(waiting, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    return [waiting[task] for task in done]


async def close_all(pullers: Iterable[Puller]) -> None:
    """Cancels every pull in flight and closes every attempt (slots, connections)."""
    pullers = list(pullers)
    pulls = [puller.pull for puller in pullers]
    for pull in pulls:
        pull.cancel()
    if pulls:
        await asyncio.wait(pulls)
    for pull in pulls:
        if not pull.cancelled():
            pull.exception()  # retrieved: a closed attempt's failure is moot
    for puller in pullers:
        await puller.items.aclose()
