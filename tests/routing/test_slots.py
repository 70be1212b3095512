"""The FIFO concurrency limit and the positions it reports."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

from llmrouter_server.routing.slots import Slots


async def _take(slots: Slots, positions: list[int]) -> None:
    async with aclosing(slots.acquire()) as waiting:
        async for position in waiting:
            positions.append(position)  # noqa: PERF401 - each position must show as it arrives


async def test_free_slot_is_taken_without_waiting() -> None:
    slots = Slots(1)
    positions: list[int] = []

    await _take(slots, positions)

    assert (positions, slots.in_use) == ([], 1)


async def test_waiters_see_their_position_move_up_and_are_served_in_order() -> None:
    slots = Slots(1)
    await _take(slots, [])
    second: list[int] = []
    third: list[int] = []
    order: list[str] = []
    t2 = asyncio.create_task(_take(slots, second))
    t2.add_done_callback(lambda _: order.append("second"))
    await asyncio.sleep(0)
    t3 = asyncio.create_task(_take(slots, third))
    t3.add_done_callback(lambda _: order.append("third"))
    await asyncio.sleep(0.01)
    assert (second, third, slots.waiting) == ([1], [2], 2)

    slots.release()
    await t2
    await asyncio.sleep(0.01)
    assert third == [2, 1]
    slots.release()
    await t3

    assert order == ["second", "third"]
    assert (slots.in_use, slots.waiting) == (1, 0)


async def test_abandoned_waiter_leaves_the_line() -> None:
    slots = Slots(1)
    await _take(slots, [])
    leaving = asyncio.create_task(_take(slots, []))
    staying: list[int] = []
    stays = asyncio.create_task(_take(slots, staying))
    await asyncio.sleep(0.01)

    leaving.cancel()
    await asyncio.sleep(0.01)
    assert (slots.waiting, staying) == (1, [2, 1])
    slots.release()
    await stays

    assert (slots.in_use, slots.waiting) == (1, 0)
