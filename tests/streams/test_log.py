"""The replay log and its cursors: windows, policies, credits, eviction."""

from __future__ import annotations

import asyncio

import pytest

from llmrouter_server.errors import (
    FailedPrecondition,
    InvalidArgument,
    OutOfRange,
    ResourceExhausted,
    Unavailable,
)
from llmrouter_server.streams.events import Chunk, Gap, Resumed
from llmrouter_server.streams.log import EVENT_OVERHEAD_BYTES, ReplayLog, SlowPolicy, Window

WINDOW = Window(high_events=4, low_events=2, high_bytes=10_000, low_bytes=5_000)


def _fill(log: ReplayLog, count: int) -> None:
    for index in range(count):
        log.append(Chunk(text=f"t{index}", token_count=1))


async def test_block_cursor_stops_the_producer_until_back_under_low_water() -> None:
    log = ReplayLog("s", retain_bytes=1_000_000)
    cursor = log.cursor(0, WINDOW)
    _fill(log, 5)
    assert log.blocked()
    room = asyncio.create_task(log.wait_room())
    await asyncio.sleep(0)

    await cursor.next()
    await cursor.next()
    await asyncio.sleep(0)
    assert not room.done()  # lag 3: under high water, not yet at low water
    await cursor.next()
    await asyncio.sleep(0)

    assert room.done()
    assert not log.blocked()


async def test_byte_high_water_blocks_too() -> None:
    log = ReplayLog("s", retain_bytes=1_000_000)
    log.cursor(0, Window(high_events=100, low_events=50, high_bytes=300, low_bytes=100))
    log.append(Chunk(text="x" * (300 - EVENT_OVERHEAD_BYTES), token_count=1))
    assert not log.blocked()

    log.append(Chunk(text="y", token_count=1))

    assert log.blocked()


async def test_skip_cursor_jumps_to_the_latest_event_with_a_gap() -> None:
    log = ReplayLog("s", retain_bytes=1_000_000)
    cursor = log.cursor(0, WINDOW, SlowPolicy.SKIP)
    _fill(log, 10)

    gap = await cursor.next()
    latest = await cursor.next()

    assert gap is not None
    assert gap.kind == Gap(from_offset=0, to_offset=8)
    assert gap.offset == 8
    assert latest is not None
    assert latest.offset == 9
    assert not log.blocked()  # SKIP cursors never hold the producer


async def test_disconnect_cursor_fails_when_behind() -> None:
    log = ReplayLog("s", retain_bytes=1_000_000)
    cursor = log.cursor(0, WINDOW, SlowPolicy.DISCONNECT)
    _fill(log, 5)

    with pytest.raises(ResourceExhausted, match="fell more than its window behind"):
        await cursor.next()


async def test_credit_cursor_hands_out_only_granted_events() -> None:
    log = ReplayLog("s", retain_bytes=1_000_000)
    cursor = log.cursor(0, WINDOW, credits=2)
    _fill(log, 3)

    first = [await cursor.next(), await cursor.next()]
    third = asyncio.create_task(cursor.next())
    await asyncio.sleep(0.01)
    assert not third.done()
    cursor.grant(1)
    event = await third

    assert [e.offset for e in first if e] == [0, 1]
    assert event is not None
    assert event.offset == 2
    assert cursor.credits == 0


async def test_bad_grants_are_refused() -> None:
    log = ReplayLog("s", retain_bytes=1_000_000)
    with pytest.raises(InvalidArgument, match=r"grant\.credits: must be positive"):
        log.cursor(0, WINDOW, credits=1).grant(0)
    with pytest.raises(FailedPrecondition, match="FLOW_MODE_CREDIT"):
        log.cursor(0, WINDOW).grant(3)


async def test_replay_then_live_then_end_with_the_error() -> None:
    log = ReplayLog("s", retain_bytes=1_000_000)
    _fill(log, 2)
    cursor = log.cursor(1, WINDOW)
    live = asyncio.create_task(cursor.next())
    replayed = await live
    waiting = asyncio.create_task(cursor.next())
    await asyncio.sleep(0)
    log.append(Resumed())
    log.close(Unavailable("bye"))

    assert replayed is not None
    assert replayed.offset == 1
    event = await waiting
    assert event is not None
    assert event.kind == Resumed()
    with pytest.raises(Unavailable):
        await cursor.next()


async def test_eviction_keeps_unread_events_of_block_cursors() -> None:
    log = ReplayLog("s", retain_bytes=3 * (EVENT_OVERHEAD_BYTES + 2))
    reader = log.cursor(0, Window(100, 50, 100_000, 50_000))
    _fill(log, 6)
    assert log.first_offset == 0  # the reader has not read any
    for _ in range(6):
        await reader.next()
    log.append(Chunk(text="t6", token_count=1))

    assert log.first_offset == 4
    with pytest.raises(OutOfRange, match="earliest available offset is 4"):
        log.cursor(1, WINDOW)
    with pytest.raises(OutOfRange, match="earliest available offset is 4 and the next is 7"):
        log.cursor(8, WINDOW)


async def test_fail_ends_one_reader_only() -> None:
    log = ReplayLog("s", retain_bytes=1_000_000)
    failing = log.cursor(0, WINDOW)
    other = log.cursor(0, WINDOW)
    waiting = asyncio.create_task(failing.next())
    await asyncio.sleep(0)

    failing.fail(FailedPrecondition("bad request"))
    log.append(Resumed())

    with pytest.raises(FailedPrecondition):
        await waiting
    assert (await other.next()) is not None


async def test_a_block_cursor_holding_past_its_max_hold_is_disconnected() -> None:
    log = ReplayLog("s", retain_bytes=1_000_000)
    owner = log.cursor(0, WINDOW)
    holder = log.cursor(0, WINDOW, credits=0, max_hold=0.05)
    _fill(log, 5)
    for _ in range(3):
        await owner.next()  # the owner is back at its low-water mark: only the holder holds

    async with asyncio.timeout(5):
        await log.wait_room()

    with pytest.raises(ResourceExhausted, match=r"more than limits\.max_hold_seconds \(0\.05 s\)"):
        await holder.next()
    assert (log.cursors, log.blocked()) == (1, False)


async def test_a_cursor_without_max_hold_is_waited_for_after_a_holder_is_disconnected() -> None:
    log = ReplayLog("s", retain_bytes=1_000_000)
    owner = log.cursor(0, WINDOW)
    holder = log.cursor(0, WINDOW, credits=0, max_hold=0.05)
    _fill(log, 5)
    room = asyncio.create_task(log.wait_room())

    with pytest.raises(ResourceExhausted):
        async with asyncio.timeout(5):
            await holder.next()  # woken by its disconnection
    assert not room.done()  # the owner still holds the producer
    for _ in range(3):
        await owner.next()
    async with asyncio.timeout(5):
        await room
