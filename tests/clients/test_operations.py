"""The Python client's Subscribe and Control against ``llmrouter serve``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from llmrouter import Client, Control, RouterError
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import operations_pb2 as ops_pb

from tests.clients.helpers import (
    collect,
    credit,
    events_of,
    greedy,
    offsets,
    rest,
    subscribe_all,
)
from tests.helpers import PROMPT, kinds

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

QUEUED, RUNNING = ops_pb.STREAM_STATE_QUEUED, ops_pb.STREAM_STATE_RUNNING
PAUSED, CANCELLED = ops_pb.STREAM_STATE_PAUSED, ops_pb.STREAM_STATE_CANCELLED


async def test_subscribe_replays_a_finished_generation_as_it_was_streamed(
    client: Client,
) -> None:
    live = await collect(client.generate(PROMPT, sampling=greedy(8)))

    items = await subscribe_all(client, live[0].stream_id)

    assert items[0].added.state == ops_pb.STREAM_STATE_COMPLETED
    assert events_of(items) == live
    assert items[-1].ended.next_offset == len(live)
    assert RouterError.from_ended(items[-1].ended) is None


async def test_subscribe_follows_a_running_generation_live(client: Client) -> None:
    # One credit: the owner gets `started` and the generation waits a few
    # events ahead until it grants more.
    owner = client.generate(PROMPT, sampling=greedy(16), flow=credit(1))
    owner_events = aiter(owner)
    started = await anext(owner_events)
    async with client.subscribe() as subscription:
        await subscription.add(started.stream_id)
        items = aiter(subscription)
        added = await anext(items)
        await subscription.close_send()

        await owner.grant(1000)
        from_owner = [started, *await rest(owner_events)]
        followed = await rest(items)

    assert added.added.state in {QUEUED, RUNNING}
    assert events_of(followed) == from_owner
    assert followed[-1].ended.next_offset == len(from_owner)


async def test_subscribe_ends_only_the_subscription_to_an_unknown_stream(
    client: Client,
) -> None:
    live = await collect(client.generate(PROMPT, sampling=greedy(4)))

    items = await subscribe_all(client, "no-such-stream", live[0].stream_id)

    assert items[0].ended.stream_id == "no-such-stream"
    error = RouterError.from_ended(items[0].ended)
    assert error is not None
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert "stream 'no-such-stream' not found" in error.message
    assert (error.reason, error.stream_id) == ("NOT_FOUND", "no-such-stream")
    assert events_of(items) == live


async def states_of(control: Control, stream_id: str) -> AsyncIterator[int]:
    """The pushed states of one generation."""
    async for change in control.changes():
        if change.stream_id == stream_id:
            yield change.state


async def test_control_steps_and_watches_a_generation_by_id(client: Client) -> None:
    stream_id = f"operated-{uuid.uuid4().hex[:10]}"
    async with client.control() as control:
        await control.watch()
        states = states_of(control, stream_id)
        owner = client.generate(PROMPT, sampling=greedy(32), flow=credit(1), stream_id=stream_id)
        owner_events = aiter(owner)
        events = [await anext(owner_events)]
        assert [await anext(states), await anext(states)] == [QUEUED, RUNNING]

        status = await control.status(stream_id)
        running = await control.list(RUNNING)
        paused = await control.pause(stream_id, "ops")
        resumed = await control.resume(stream_id)
        cancelled = await control.cancel(stream_id, "enough")
        pushed = [await anext(states) for _ in range(3)]

    assert status.state == RUNNING
    assert stream_id in [listed.stream_id for listed in running]
    assert (paused.state, resumed.state, cancelled.state) == (PAUSED, RUNNING, CANCELLED)
    assert pushed == [PAUSED, RUNNING, CANCELLED]
    # The owner is out of credits: it skips to the completed event, which ends its call.
    events += await rest(owner_events)
    assert kinds(events) == ["started", "completed"]
    completed = events[-1].completed
    assert completed.finish_reason == ev_pb.FINISH_REASON_CANCELLED
    assert (completed.cancelled_by, completed.cancel_reason) == (
        ev_pb.CANCELLED_BY_OPERATOR, "enough"
    )  # fmt: skip
    assert events[-1].offset == cancelled.next_offset - 1
    # What it skipped stays in the log: the pause and the resume, in offset order.
    replayed = events_of(await subscribe_all(client, stream_id))
    assert offsets(replayed) == list(range(cancelled.next_offset))
    assert kinds(replayed).index("resumed") > kinds(replayed).index("paused") > 0
    assert replayed[-1] == events[-1]


async def test_control_answers_a_failed_command_in_band_and_stays_open(
    client: Client,
) -> None:
    finished = (await collect(client.generate(PROMPT, sampling=greedy(2))))[0].stream_id

    async with client.control() as control:
        with pytest.raises(RouterError) as unknown:
            await control.status("no-such-stream")
        with pytest.raises(RouterError) as late:
            await control.pause(finished, "too late")
        with pytest.raises(RouterError) as watch_unknown:
            await control.watch("no-such-stream")
        status = await control.status(finished)
        assert control.error is None

    assert unknown.value.code == grpc.StatusCode.NOT_FOUND
    assert "stream 'no-such-stream' not found" in unknown.value.message
    assert (unknown.value.reason, unknown.value.stream_id) == ("NOT_FOUND", "no-such-stream")
    assert unknown.value.error_info.domain == "llmrouter.v1"
    assert late.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "it has completed" in late.value.message
    assert (late.value.reason, late.value.stream_id) == ("FAILED_PRECONDITION", finished)
    assert watch_unknown.value.code == grpc.StatusCode.NOT_FOUND
    assert watch_unknown.value.reason == "NOT_FOUND"
    assert status.state == ops_pb.STREAM_STATE_COMPLETED
