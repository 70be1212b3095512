"""Admission of generations by their identity's limits: reject, queue, refund, forget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest

from llmrouter_server.auth.principal import OPEN, Principal
from llmrouter_server.backends.scripted import ScriptedBackend, words
from llmrouter_server.config import Config, IdentityLimits, OnLimit
from llmrouter_server.errors import InvalidArgument, ResourceExhausted
from llmrouter_server.routing.router import build_router
from llmrouter_server.streams.admission import Admission, AdmissionStatus, Ticket
from llmrouter_server.streams.events import Event
from llmrouter_server.streams.generation import Generation
from llmrouter_server.streams.lifecycle import StreamState
from llmrouter_server.streams.log import Cursor, Window
from llmrouter_server.streams.request import Flow, GenerationRequest
from llmrouter_server.streams.settings import Settings
from llmrouter_server.values import CancelledBy
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(10)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def principal(name: str = "team-a", **limits: object) -> Principal:
    return Principal(name, "t", limits=IdentityLimits(**limits), entry=f"auth.api_keys[{name}]")  # type: ignore[arg-type]


async def positions(ticket: Ticket, seen: list[int]) -> None:
    async with aclosing(ticket.wait()) as waiting:
        async for position in waiting:
            seen.append(position)  # noqa: PERF401 - each position must show as it arrives


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_an_identity_without_limits_is_admitted_and_keeps_no_state() -> None:
    admission = Admission()

    ticket = admission.admit(OPEN, 10_000)
    await positions(ticket, seen := [])
    ticket.finish(10_000)

    assert (ticket.admitted, seen, admission.status(OPEN)) == (True, [], AdmissionStatus())


async def test_reject_mode_refuses_at_once_with_the_buckets_wait(clock: Clock) -> None:
    admission = Admission(clock)
    team = principal(output_tokens_per_minute=2000)
    admission.admit(team, 1500)

    with pytest.raises(ResourceExhausted) as caught:
        admission.admit(team, 1000)

    assert caught.value.message == (
        "auth.api_keys[team-a].limits.output_tokens_per_minute: 1500 tokens reserved of 2000, "
        "this request reserves 1000; retry in 15.0 s"
    )
    assert caught.value.retry_after == pytest.approx(15.0)


async def test_finishing_refunds_the_unused_reservation_once(clock: Clock) -> None:
    admission = Admission(clock)
    team = principal(output_tokens_per_minute=100)
    ticket = admission.admit(team, 80)

    ticket.finish(30)
    ticket.finish(30)

    assert admission.status(team) == AdmissionStatus(0, 0, 0, 70)


async def test_queue_mode_waits_in_line_telling_the_place_until_a_generation_ends(
    clock: Clock,
) -> None:
    admission = Admission(clock)
    team = principal(concurrent_generations=1, on_limit=OnLimit.QUEUE)
    running = admission.admit(team, 10)
    second, third = admission.admit(team, 10), admission.admit(team, 10)
    seen_second: list[int] = []
    seen_third: list[int] = []
    waits = [
        asyncio.create_task(positions(second, seen_second)),
        asyncio.create_task(positions(third, seen_third)),
    ]
    await eventually(lambda: (seen_second, seen_third) == ([1], [2]))
    assert not second.admitted

    running.finish(10)
    await waits[0]
    await eventually(lambda: seen_third == [2, 1])
    assert (second.admitted, third.admitted) == (True, False)

    second.finish(10)
    await waits[1]
    assert third.admitted


async def test_the_line_is_first_in_first_out_even_when_a_later_request_would_fit(
    clock: Clock,
) -> None:
    admission = Admission(clock)
    team = principal(output_tokens_per_minute=100, on_limit=OnLimit.QUEUE)
    first = admission.admit(team, 60)
    large, small = admission.admit(team, 60), admission.admit(team, 10)
    seen_large: list[int] = []
    seen_small: list[int] = []
    large_waits = asyncio.create_task(positions(large, seen_large))
    small_waits = asyncio.create_task(positions(small, seen_small))
    await eventually(lambda: seen_small == [2])
    assert (large.admitted, small.admitted) == (False, False)  # 40 tokens are there

    first.finish(0)  # all 60 back: the large one fits, then the small one
    await large_waits
    await small_waits

    assert (seen_large, seen_small, large.admitted, small.admitted) == ([1], [2], True, True)


async def test_the_head_is_admitted_once_the_bucket_has_refilled(clock: Clock) -> None:
    admission = Admission(clock)
    team = principal(output_tokens_per_minute=600, on_limit=OnLimit.QUEUE)  # 10 a second
    admission.admit(team, 600)
    waiting = admission.admit(team, 1)  # 0.1 s of refill away
    seen: list[int] = []

    clock.now += 0.1
    await asyncio.wait_for(positions(waiting, seen), timeout=5)

    assert (seen, waiting.admitted) == ([1], True)


async def test_a_ticket_whose_deadline_passes_leaves_the_line_and_the_next_moves_up(
    clock: Clock,
) -> None:
    admission = Admission(clock)
    team = principal(concurrent_generations=1, on_limit=OnLimit.QUEUE)
    admission.admit(team, 10)
    expiring = admission.admit(team, 10, deadline=time.monotonic() + 0.2)
    behind = admission.admit(team, 10)
    seen_behind: list[int] = []
    behind_waits = asyncio.create_task(positions(behind, seen_behind))

    with pytest.raises(ResourceExhausted) as caught:
        await positions(expiring, [])
    await eventually(lambda: seen_behind == [2, 1])

    assert caught.value.message == (
        "the call's deadline passed while the request waited (on_limit: queue): "
        "auth.api_keys[team-a].limits.concurrent_generations: 1 generations running of 1; "
        "retry when one of them ends"
    )
    assert seen_behind == [2, 1]
    behind_waits.cancel()


async def test_a_ticket_finished_while_waiting_leaves_the_line(clock: Clock) -> None:
    admission = Admission(clock)
    team = principal(concurrent_generations=1, on_limit=OnLimit.QUEUE)
    running = admission.admit(team, 10)
    cancelled, behind = admission.admit(team, 10), admission.admit(team, 10)
    seen_behind: list[int] = []
    behind_waits = asyncio.create_task(positions(behind, seen_behind))
    await eventually(lambda: seen_behind == [2])

    cancelled.finish(0)
    await eventually(lambda: seen_behind == [2, 1])
    running.finish(10)
    await behind_waits

    assert (seen_behind, behind.admitted, cancelled.admitted) == ([2, 1], True, False)


async def test_a_full_line_refuses_naming_max_queued(clock: Clock) -> None:
    admission = Admission(clock)
    team = principal(concurrent_generations=1, on_limit=OnLimit.QUEUE, max_queued=2)
    for _ in range(3):
        admission.admit(team, 10)

    with pytest.raises(ResourceExhausted) as caught:
        admission.admit(team, 10)

    assert caught.value.message == (
        "auth.api_keys[team-a].limits.max_queued: 2 requests already wait for this "
        "identity's limits"
    )
    assert caught.value.retry_after is None


async def test_a_request_beyond_the_bucket_is_invalid_argument_in_queue_mode(
    clock: Clock,
) -> None:
    admission = Admission(clock)
    team = principal(output_tokens_per_minute=100, on_limit=OnLimit.QUEUE)

    with pytest.raises(InvalidArgument) as caught:
        admission.admit(team, 101)

    assert caught.value.field == "start.sampling.max_tokens"


async def test_an_idle_identity_is_forgotten(clock: Clock) -> None:
    admission = Admission(clock)
    team = principal(concurrent_generations=2)
    metered = principal("team-b", output_tokens_per_minute=60)

    admission.admit(team, 5).finish(5)
    admission.admit(metered, 6).finish(6)

    assert admission.status(team) == AdmissionStatus()  # forgotten: nothing to refill
    assert admission.status(metered) == AdmissionStatus(0, 0, 0, 54)  # refills for 6 s more
    clock.now += 6
    for index in range(70):  # enough identities for a sweep
        admission.admit(principal(f"other-{index}", concurrent_generations=1), 1)
    assert admission.status(metered) == AdmissionStatus()


async def test_a_generation_cancelled_before_its_producer_ran_ends_and_frees_its_place() -> None:
    config = Config(
        backends={"fake": {"kind": "openai", "api_key_env": None}},
        routes={"r": {"targets": [{"backend": "fake", "model": "m"}]}},
        default_route="r",
    )
    router = build_router(config, {"fake": ScriptedBackend("fake", words("one two"))})
    route = router.resolve("")
    admission = Admission()
    team = principal(concurrent_generations=1, output_tokens_per_minute=100)
    settings = Settings(max_tokens=10, window=Window(), retain_bytes=10_000, release_after=60)
    ticket = admission.admit(team, 10)
    generation = Generation(
        "s", GenerationRequest(prompt="x"), settings, route, route.plan, router, team, ticket
    )
    cursor = generation.open_owner(0, Flow())

    generation.start()
    generation.cancel(CancelledBy.OPERATOR, "at once")
    await generation.wait()

    events = [event async for event in _read(cursor)]
    assert [type(event.kind).__name__ for event in events] == ["Completed"]
    assert generation.state is StreamState.CANCELLED
    assert admission.status(team) == AdmissionStatus()  # all refunded: forgotten


async def _read(cursor: Cursor) -> AsyncIterator[Event]:
    while (event := await cursor.next()) is not None:
        yield event
