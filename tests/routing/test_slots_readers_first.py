"""A freed backend slot goes to a generation whose caller reads before one whose caller does not.

``Slots`` asks each waiter's ``SlotUser`` whether its caller reads; here the
answer is a flag the test sets. Among readers, and among the others, the
order is arrival. A generation's gate learns from its ``SlotUser`` when a
reader waits for a backend it may hold, and one holder gives way per reader.
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest

from llmrouter_server.routing.slots import QueueClaim, Slots, SlotUser

pytestmark = pytest.mark.timeout(10)


class Caller:
    """One generation waiting for a slot, with a caller that reads or not."""

    def __init__(self, slots: Slots, name: str, order: list[str], *, reads: bool) -> None:
        self.name = name
        self.reading = reads
        self.user = SlotUser([slots], lambda: self.reading)
        self.positions: list[int] = []
        self.granted = asyncio.Event()
        self._slots = slots
        self._order = order

    async def take(self) -> None:
        async with aclosing(self._slots.acquire(QueueClaim(user=self.user))) as waiting:
            async for position in waiting:
                self.positions.append(position)
        self._order.append(self.name)
        self.granted.set()


async def _queued(slots: Slots, *callers: Caller) -> list[asyncio.Task[None]]:
    """Starts each caller's wait in turn, each once the previous one is in line."""
    tasks = []
    for caller in callers:
        tasks.append(asyncio.create_task(caller.take()))
        async with asyncio.timeout(5):
            while caller.user.queued == 0:  # noqa: ASYNC110 - the slots' own counter
                await asyncio.sleep(0)
    return tasks


def _held() -> tuple[Slots, list[str]]:
    """One slot, held by a generation not in the test; the order callers get it."""
    slots = Slots(1)
    slots.in_use = 1
    return slots, []


async def _release_to(slots: Slots, *callers: Caller) -> None:
    """Frees the slot once per caller, each time waiting for that caller to take it."""
    for caller in callers:
        slots.release()
        await caller.granted.wait()


async def test_a_freed_slot_passes_over_callers_that_do_not_read() -> None:
    slots, order = _held()
    stalled = Caller(slots, "stalled", order, reads=False)
    first = Caller(slots, "first reader", order, reads=True)
    second = Caller(slots, "second reader", order, reads=True)
    tasks = await _queued(slots, stalled, first, second)

    await _release_to(slots, first, second, stalled)
    await asyncio.gather(*tasks)

    assert order == ["first reader", "second reader", "stalled"]
    assert (slots.in_use, slots.waiting) == (1, 0)


async def test_waiters_that_do_not_read_are_served_in_arrival_order_when_no_reader_waits() -> None:
    slots, order = _held()
    one = Caller(slots, "one", order, reads=False)
    two = Caller(slots, "two", order, reads=False)
    tasks = await _queued(slots, one, two)

    await _release_to(slots, one, two)
    await asyncio.gather(*tasks)

    assert order == ["one", "two"]


async def test_a_caller_that_starts_reading_again_is_served_as_a_reader() -> None:
    slots, order = _held()
    early = Caller(slots, "early", order, reads=True)
    late = Caller(slots, "late", order, reads=False)
    tasks = await _queued(slots, early, late)
    early.reading = False  # stops reading while in line: the later one goes first
    late.reading = True

    await _release_to(slots, late, early)
    await asyncio.gather(*tasks)

    assert order == ["late", "early"]


async def test_positions_count_the_readers_first_and_only_readers_are_told() -> None:
    slots, order = _held()
    stalled = Caller(slots, "stalled", order, reads=False)
    reader = Caller(slots, "reader", order, reads=True)
    tasks = await _queued(slots, stalled, reader)
    late = Caller(slots, "late reader", order, reads=True)
    tasks += await _queued(slots, late)

    # The reader arrived second and is next; the late one comes after it, before the
    # stalled caller, which was told its place when it joined and not since (it does
    # not read its queued events).
    assert (reader.positions, late.positions) == ([1], [2])
    assert stalled.positions == [1]
    slots.release()
    await reader.granted.wait()
    async with asyncio.timeout(5):
        while late.positions[-1] != 1:  # noqa: ASYNC110 - waits for its yield
            await asyncio.sleep(0)
    assert stalled.positions == [1]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert (slots.waiting, stalled.user.queued, late.user.queued) == (0, 0, 0)


async def test_holders_hear_when_a_reader_queues_and_one_gives_way_for_it() -> None:
    slots = Slots(2)
    order: list[str] = []
    holders = [SlotUser([slots]), SlotUser([slots])]
    told: list[bool] = []
    stops = [holder.watch(lambda h=holder: told.append(h.wanted())) for holder in holders]
    for holder in holders:
        async with aclosing(slots.acquire(QueueClaim(user=holder))) as waiting:
            assert [p async for p in waiting] == []  # a free slot: taken at once
    assert not any(holder.wanted() for holder in holders)

    stalled = Caller(slots, "stalled", order, reads=False)
    tasks = await _queued(slots, stalled)
    assert told == [False, False]  # told of it, but its caller does not read: nobody is wanted
    reader = Caller(slots, "reader", order, reads=True)
    tasks += await _queued(slots, reader)
    assert told[2:] == [True, True]
    assert not reader.user.wanted()  # it waits itself: it holds nothing to give back

    # One holder looks for the one reader, not both; it gives way.
    assert [holder.wake() for holder in holders] == [True, False]
    assert not any(holder.wanted() for holder in holders)  # one is on its way
    assert holders[0].give_way()
    assert not holders[1].give_way()  # offered already
    slots.release()  # the first holder keeps its word
    await reader.granted.wait()
    assert not any(holder.give_way() for holder in holders)  # only a caller that does not read
    for stop in stops:
        stop()
    slots.release()
    await asyncio.gather(*tasks)
    assert order == ["reader", "stalled"]
    assert len(told) == 6  # not told once no longer watching (the last grant)
