"""Flow control through the gateway: credits, a reader that stops reading, a dead socket."""

from __future__ import annotations

import asyncio
import json
import socket as sockets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from llmrouter.v1 import service_pb2 as svc_pb
from websockets.asyncio.client import connect

from llmrouter_server.backends.scripted import ScriptedBackend, Step, words
from tests.gateway.helpers import (
    Client,
    as_json,
    client_options,
    events,
    gateway_config,
    generation,
    joined,
    kind,
    offsets,
    socket,
    ws_url,
)
from tests.helpers import Served, eventually, scripted_config, serving, start
from tests.security.scripted import HELD_ANSWER, HeldBackend

WINDOW_EVENTS = 8
TEXT = " ".join(f"w{index}" for index in range(40))
CREDIT_3 = {"mode": "FLOW_MODE_CREDIT", "initial_credits": 3}


@pytest.fixture
async def wordy() -> AsyncIterator[Served]:
    """``fake-model`` answers ``TEXT`` (40 words) at once; the window is 8 events."""
    config = gateway_config(sections={"streams": {"window_events": WINDOW_EVENTS}})
    backends = {"fake": ScriptedBackend("fake", words(TEXT)), "held": HeldBackend()}
    async with serving(config, backends) as served:
        yield served


async def test_credit_flow_sends_exactly_what_was_granted(wordy: Served) -> None:
    async with socket(wordy) as client:
        await client.open(
            "g", "Generate", start(stream_id="job", flow=CREDIT_3, sampling={"max_tokens": 40})
        )
        first = [await client.message("g") for _ in range(3)]
        job = generation(wordy, "job")
        await eventually(lambda: job.log.next_offset >= 3 + WINDOW_EVENTS)  # more are ready
        await client.round_trip()
        held_back = client.pending("g")

        await client.send({"id": "g", "message": {"grant": {"credits": 2}}})
        more = [await client.message("g") for _ in range(2)]
        await client.round_trip()
        held_back_again = client.pending("g")
        await client.send({"id": "g", "message": {"grant": {"credits": 0}}})
        rejected = await client.message("g")
        await client.send({"id": "g", "message": {"grant": {"credits": 1000}}, "end": True})
        rest, status = await client.rest("g")

    assert (held_back, held_back_again) == (0, 0)
    assert offsets(first + more) == [0, 1, 2, 3, 4]
    assert rejected["rejected"]["message"] == "grant.credits: must be positive"
    assert status == {"code": 0}
    assert offsets(first + more + rest) == list(range(len(rest) + 5))
    assert joined(first + more + rest) == TEXT


def _steps_past_the_buffers(size: int) -> int:
    """Steps of ``size`` characters that overflow what the kernel may buffer for a socket
    (``tcp_wmem``'s maximum for the server's send buffer), by half again."""
    try:
        wmem_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except OSError:  # not Linux: its default maximum
        wmem_max = 4 * 1024 * 1024
    return 3 * wmem_max // (2 * size) + 64


async def test_a_reader_that_stops_reading_stops_the_backend_and_loses_nothing() -> None:
    size = 4000
    steps = [
        Step(f"{index:06d}" + "x" * (size - 6)) for index in range(_steps_past_the_buffers(size))
    ]
    backend = ScriptedBackend("big", steps)
    config = scripted_config(
        "big",
        gateway={"port": 0},
        streams={"window_events": WINDOW_EVENTS},
        limits={"max_tokens_cap": len(steps), "default_max_tokens": 16},
    )
    async with serving(config, {"big": backend}) as served:
        # A small receive buffer, and websockets stops reading after 2 unread frames.
        raw = sockets.socket()
        raw.setsockopt(sockets.SOL_SOCKET, sockets.SO_RCVBUF, 4096)
        raw.setblocking(False)
        await asyncio.get_running_loop().sock_connect(
            raw, ("127.0.0.1", served.server.gateway_port)
        )
        async with connect(ws_url(served), **client_options(sock=raw, max_queue=2)) as ws:
            request = start(stream_id="big", sampling={"max_tokens": len(steps)})
            await ws.send(
                json.dumps({"id": "g", "method": "Generate", "message": as_json(request)})
            )
            await eventually(lambda: bool(served.server.generations.registry.running()))
            job = generation(served, "big")
            await eventually(job.log.blocked, seconds=20)  # the producer waits at its window
            produced = backend.emitted
            status = (await served.stub.GetStream(svc_pb.GetStreamRequest(stream_id="big"))).status

            assert produced < len(steps)
            assert produced == job.log.next_offset - 1  # the chunks logged, after `started`
            assert (status.state, status.next_offset) == (2, produced + 1)  # RUNNING
            assert backend.emitted == produced
            assert job.log.blocked()

            frames = [json.loads(frame) async for frame in _until_status(ws)]
    messages = [frame["message"] for frame in frames[:-1]]
    assert frames[-1] == {"id": "g", "status": {"code": 0}}
    assert offsets(messages) == list(range(len(steps) + 2))
    assert joined(messages) == "".join(step.text for step in steps)
    assert backend.emitted == len(steps)


async def _until_status(ws: Any) -> AsyncIterator[str]:
    async for frame in ws:
        yield frame
        if '"status"' in frame[:40]:
            return


@pytest.fixture
async def beating() -> AsyncIterator[tuple[Served, HeldBackend]]:
    """Pings every 0.3 s: a socket that does not answer within 0.15 s is closed."""
    held = HeldBackend()
    config = gateway_config(heartbeat_seconds=0.3)
    async with serving(config, {"fake": ScriptedBackend("fake", []), "held": held}) as served:
        yield served, held


async def _held_call(client: Client, stream_id: str, **fields: Any) -> None:
    await client.open("g", "Generate", start(model="held-model", stream_id=stream_id, **fields))
    assert [kind((await client.message("g"))["event"]) for _ in range(2)] == ["started", "chunk"]


DETACH = {"action": "DISCONNECT_ACTION_DETACH", "detach_ttl": timedelta(seconds=30)}


@pytest.mark.parametrize("policy", ["cancel", "detach"])
async def test_a_socket_that_stops_answering_pings_is_closed_and_its_call_ends(
    beating: tuple[Served, HeldBackend], policy: str
) -> None:
    served, held = beating
    fields = {"on_disconnect": DETACH} if policy == "detach" else {}
    async with socket(served) as live, socket(served) as dead:
        await _held_call(live, "live")
        await _held_call(dead, "dead", **fields)
        dead.ws.transport.pause_reading()  # pings are no longer read, so never answered
        job = generation(served, "dead")
        if policy == "cancel":
            await eventually(lambda: job.state.value == "cancelled")
            assert job.log.recent(1)[0].kind.cancelled_by == "caller"
        else:
            await eventually(lambda: job.detached)
            assert job.state.value == "running"
        dead.ws.transport.resume_reading()
        await dead.ws.wait_closed()

        await live.round_trip()
        held.release.set()
        rest, status = await live.rest("g")
    assert dead.ws.close_code == 1006  # no close frame: the server dropped the connection
    assert status == {"code": 0}
    assert kind(events(rest)[-1]) == "completed"
    assert generation(served, "live").state.value == "completed"
    assert HELD_ANSWER.endswith(joined(rest))
