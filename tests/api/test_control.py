"""Control commands, watched state changes, ListStreams and GetStream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.backends.scripted import ScriptedBackend, Step
from tests.helpers import (
    Served,
    control_request,
    generate,
    read_events,
    scripted_config,
    serving,
    start,
)

CONFIG = scripted_config("fake")
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION.value[0]


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend("fake", [Step("a"), Step("b"), Step("c")])


@pytest.fixture
async def served(backend: ScriptedBackend) -> AsyncIterator[Served]:
    async with serving(CONFIG, {"fake": backend}) as served:
        yield served


class Operator:
    """One Control call driven by a queue of commands."""

    def __init__(self, served: Served) -> None:
        self.commands: asyncio.Queue[svc_pb.ControlRequest | None] = asyncio.Queue()
        self.call = served.stub.Control(self._requests())
        self.pushed: list[Any] = []

    async def ask(self, request_id: str, **command: Any) -> Any:
        """Sends a command and returns its reply; pushed statuses read meanwhile are kept."""
        await self.commands.put(control_request(request_id, **command))
        while not (reply := await self.call.read()).request_id:
            self.pushed.append(reply)
        assert reply.request_id == request_id
        return reply

    async def close(self) -> None:
        await self.commands.put(None)

    async def _requests(self) -> AsyncIterator[svc_pb.ControlRequest]:
        while (request := await self.commands.get()) is not None:
            yield request


async def test_watch_pushes_every_state_change(served: Served, backend: ScriptedBackend) -> None:
    backend.script = [Step("a"), Step(stall=True)]
    operator = Operator(served)
    listed = await operator.ask("w", watch={})
    call = served.stub.Generate(iter([start(stream_id="watched")]))
    await read_events(call, limit=2)
    await operator.ask("p", pause={"stream_id": "watched", "reason": "look"})
    await operator.ask("r", resume={"stream_id": "watched"})
    call.cancel()

    pushed = operator.pushed
    while not pushed or pushed[-1].status.state != ops_pb.STREAM_STATE_CANCELLED:
        pushed.append(await operator.call.read())
    operator.call.cancel()

    assert listed.request_id == "w"
    assert list(listed.list.streams) == []
    assert [r.status.state for r in pushed] == [
        ops_pb.STREAM_STATE_QUEUED,
        ops_pb.STREAM_STATE_RUNNING,
        ops_pb.STREAM_STATE_PAUSED,
        ops_pb.STREAM_STATE_RUNNING,
        ops_pb.STREAM_STATE_CANCELLED,
    ]
    assert {r.status.stream_id for r in pushed} == {"watched"}


async def test_failed_commands_are_answered_in_band_and_the_channel_stays_open(
    served: Served,
) -> None:
    await generate(served.stub, start(stream_id="done"))
    operator = Operator(served)

    unknown = await operator.ask("1", status={"stream_id": "nope"})
    finished = await operator.ask("2", pause={"stream_id": "done"})
    not_paused = await operator.ask("3", resume={"stream_id": "done"})
    empty = await operator.ask("4")
    status = await operator.ask("5", status={"stream_id": "done"})
    watch_unknown = await operator.ask("6", watch={"stream_ids": ["done", "nope"]})
    await operator.close()

    assert (unknown.request_id, unknown.error.code) == ("1", NOT_FOUND)
    assert "stream 'nope' not found" in unknown.error.message
    info = error_details_pb2.ErrorInfo()
    assert unknown.error.details[0].Unpack(info)
    assert (info.domain, info.reason) == ("llmrouter.v1", "NOT_FOUND")
    assert finished.error.code == FAILED_PRECONDITION
    assert finished.error.message == "cannot pause stream 'done': it has completed"
    assert not_paused.error.code == FAILED_PRECONDITION
    assert empty.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    violations = error_details_pb2.BadRequest()
    assert empty.error.details[1].Unpack(violations)
    assert violations.field_violations[0].field == "ControlRequest.command"
    assert status.status.state == ops_pb.STREAM_STATE_COMPLETED
    assert status.status.next_offset == 5
    assert status.status.usage.completion_tokens == 3
    assert watch_unknown.error.code == NOT_FOUND
    assert await operator.call.read() is grpc.aio.EOF


async def test_list_command_filters_by_state(served: Served, backend: ScriptedBackend) -> None:
    await generate(served.stub, start(stream_id="finished"))
    backend.script = [Step(stall=True)]
    running = served.stub.Generate(iter([start(stream_id="running")]))
    await read_events(running, limit=1)
    operator = Operator(served)

    everything = await operator.ask("all", list={})
    completed = await operator.ask("c", list={"states": [ops_pb.STREAM_STATE_COMPLETED]})
    await operator.close()
    running.cancel()

    assert [s.stream_id for s in everything.list.streams] == ["running", "finished"]
    assert [s.stream_id for s in completed.list.streams] == ["finished"]


async def test_list_streams_pages_newest_first(served: Served) -> None:
    for name in ("one", "two", "three"):
        await generate(served.stub, start(stream_id=name, labels={"team": name}))

    first = await served.stub.ListStreams(svc_pb.ListStreamsRequest(page_size=2))
    second = await served.stub.ListStreams(
        svc_pb.ListStreamsRequest(page_size=2, page_token=first.next_page_token)
    )

    assert [s.stream_id for s in first.streams] == ["three", "two"]
    assert [s.stream_id for s in second.streams] == ["one"]
    assert second.next_page_token == ""
    assert dict(first.streams[0].labels) == {"team": "three"}
    assert first.streams[0].finish_reason != 0
    assert first.streams[0].HasField("finished_at")


async def test_list_streams_refuses_a_made_up_page_token(served: Served) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.ListStreams(svc_pb.ListStreamsRequest(page_token="abc"))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ListStreamsRequest.page_token" in caught.value.details()


async def test_get_stream_returns_status_and_recent_events(served: Served) -> None:
    events = await generate(served.stub, start(stream_id="looked-up"))

    reply = await served.stub.GetStream(
        svc_pb.GetStreamRequest(stream_id="looked-up", recent_events=2)
    )

    assert reply.status.stream_id == "looked-up"
    assert reply.status.state == ops_pb.STREAM_STATE_COMPLETED
    assert [e.SerializeToString() for e in reply.recent_events] == [
        e.SerializeToString() for e in events[-2:]
    ]


async def test_get_stream_of_an_unknown_id_is_not_found(served: Served) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.GetStream(svc_pb.GetStreamRequest(stream_id="ghost"))

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "stream 'ghost' not found" in caught.value.details()
