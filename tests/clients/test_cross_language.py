"""Go starts a generation, TypeScript follows it, Python cancels it, on one server.

The Go program (``clients/go/internal/crosslang/generate``) starts a greedy
generation under a chosen stream id and pauses it after its first chunk; the
TypeScript program (``clients/typescript/test/crosslang/subscribe.ts``)
subscribes to it from offset 0; this test cancels it through the Python
client's Control channel. All three must see the same events at the same
offsets and the same end: one ``completed`` event with finish reason CANCELLED,
cancelled by the operator for the reason it gave, after which the Go call ends
OK and the TypeScript subscription ends without an error, at the same next
offset.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import TypeVar

import pytest
from google.protobuf import json_format
from llmrouter import Client, RouterError
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb

from tests.clients.helpers import events_of, offsets
from tests.helpers import kinds

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
M = TypeVar("M", ev_pb.StreamEvent, svc_pb.SubscribeResponse)


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is not on PATH (make test installs what it needs)"
    return path


@pytest.fixture(scope="module")
def go_generate(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The Go program, built."""
    binary = tmp_path_factory.mktemp("go") / "generate"
    package = "./internal/crosslang/generate"
    build = [_tool("go"), "build", "-o", str(binary), package]
    subprocess.run(build, cwd=ROOT / "clients" / "go", check=True, timeout=300)
    return str(binary)


@pytest.fixture(scope="module")
def ts_subscribe() -> list[str]:
    """The TypeScript program, compiled (its dependencies are what ``make ts-deps`` installs)."""
    folder = ROOT / "clients" / "typescript"
    assert (folder / "node_modules").is_dir(), "run 'make ts-deps' first"
    subprocess.run([_tool("npm"), "run", "--silent", "build"], cwd=folder, check=True, timeout=300)
    return [_tool("node"), str(folder / "dist" / "test" / "crosslang" / "subscribe.js")]


class Program:
    """A program whose stdout lines are read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    @classmethod
    async def start(cls, *command: str) -> Program:
        process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        return cls(process)

    async def until(self, prefix: str) -> str:
        """Reads lines until one starts with ``prefix``; returns it."""
        while True:
            line = await self.next_line()
            if line.startswith(prefix):
                return line

    async def finish(self) -> list[str]:
        """Reads every remaining line; checks the program succeeded."""
        while await self.next_line():
            pass
        assert await self.process.wait() == 0
        return self.lines

    async def next_line(self) -> str:
        assert self.process.stdout is not None
        line = (await self.process.stdout.readline()).decode()
        if line:
            self.lines.append(line.rstrip("\n"))
        return line

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


async def test_go_starts_typescript_follows_python_cancels(
    client: Client, address: str, go_generate: str, ts_subscribe: list[str]
) -> None:
    stream_id = f"crosslang-{uuid.uuid4().hex[:10]}"
    go = await Program.start(go_generate, "-address", address, "-stream-id", stream_id)
    ts: Program | None = None
    try:
        await _until_kind(go, "paused")
        ts = await Program.start(*ts_subscribe, address, stream_id)
        await ts.until("item {")
        async with client.control() as control:
            paused = await control.status(stream_id)
            cancelled = await control.cancel(stream_id, "cross-language test")
        go_lines, ts_lines = await go.finish(), await ts.finish()
    finally:
        go.kill()
        if ts is not None:
            ts.kill()
    looked_up = await client.get_stream(stream_id, recent_events=1)

    go_events = [_parse(ev_pb.StreamEvent(), line, "event ") for line in go_lines[:-1]]
    ts_items = [_parse(svc_pb.SubscribeResponse(), line, "item ") for line in ts_lines]
    end = cancelled.next_offset
    assert paused.state == ops_pb.STREAM_STATE_PAUSED
    assert cancelled.state == looked_up.status.state == ops_pb.STREAM_STATE_CANCELLED
    assert offsets(go_events) == list(range(end))
    assert "paused" in kinds(go_events)
    completed = go_events[-1].completed
    assert completed.finish_reason == ev_pb.FINISH_REASON_CANCELLED
    assert (completed.cancelled_by, completed.cancel_reason) == (
        ev_pb.CANCELLED_BY_OPERATOR, "cross-language test"
    )  # fmt: skip
    assert go_lines[-1] == "end OK"
    assert ts_items[0].added.stream_id == stream_id
    assert events_of(ts_items) == go_events
    assert ts_items[-1].ended.next_offset == end
    assert RouterError.from_ended(ts_items[-1].ended) is None
    assert looked_up.recent_events[-1] == go_events[-1]


async def _until_kind(program: Program, kind: str) -> None:
    while True:
        line = await program.until("event ")
        if _parse(ev_pb.StreamEvent(), line, "event ").WhichOneof("kind") == kind:
            return


def _parse(message: M, line: str, prefix: str) -> M:
    assert line.startswith(prefix), line
    return json_format.Parse(line.removeprefix(prefix), message)
