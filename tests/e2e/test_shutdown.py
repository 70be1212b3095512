"""End to end: ``llmrouter serve`` shuts down gracefully on SIGTERM.

The server runs as a subprocess with ``server.grace_period_seconds: 2`` and
two routes on OpenAI-compatible fault upstreams on loopback: ``fast`` answers
eight tokens 0.15 s apart (done well within the grace), ``slow`` 64 tokens
0.5 s apart (still running when the grace ends). With ten generations on
each, and one detached generation on ``slow`` followed by a subscriber, it
gets SIGTERM; a ``grpc.health.v1.Health/Watch`` call follows the server's
health throughout. In process, the shutdown's closers (where telemetry and the
metrics server stop) run last, in order.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from llmrouter_server.app import start_server
from llmrouter_server.backends.scripted import ScriptedBackend, words
from tests.backends.upstream import free_port
from tests.helpers import error_info, scripted_config, start, text
from tests.routing.faults import FaultUpstream, slow
from tests.serve_process import LLMROUTER

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

GRACE = 2.0
"""``server.grace_period_seconds``."""
FAST_TOKENS = 8
SLOW_TOKENS = 64
PER_ROUTE = 10
"""Generations started on each route with their caller attached."""

CONFIG = """\
server: {{host: 127.0.0.1, port: {port}, grace_period_seconds: {grace}}}
backends:
  fast: {{kind: openai, base_url: "{fast}", api_key_env: null}}
  slow: {{kind: openai, base_url: "{slow}", api_key_env: null}}
routes:
  fast: {{targets: [{{backend: fast, model: m}}]}}
  slow: {{targets: [{{backend: slow, model: m}}]}}
default_route: fast
"""

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class Server:
    """``llmrouter serve`` as a subprocess."""

    process: asyncio.subprocess.Process
    channel: grpc.aio.Channel
    log: IO[str]

    @property
    def stub(self) -> svc_grpc.RouterServiceStub:
        return svc_grpc.RouterServiceStub(self.channel)

    @property
    def health(self) -> health_pb2_grpc.HealthStub:
        return health_pb2_grpc.HealthStub(self.channel)

    def said(self) -> str:
        self.log.seek(0)
        return self.log.read()


@dataclass
class Ending:
    """How one call or subscription ended, as its client saw it."""

    events: list[Any] = field(default_factory=list)
    """The events received, in order."""
    error: grpc.aio.AioRpcError | None = None
    """The call's status, when not OK."""
    ended: Any = None
    """A subscription's ``ended`` item."""
    at: float = 0.0
    """When it ended (monotonic)."""


@pytest.fixture
async def upstreams() -> AsyncIterator[tuple[FaultUpstream, FaultUpstream]]:
    fast = FaultUpstream(tokens=FAST_TOKENS, script=slow(0.15))
    slow_ = FaultUpstream(tokens=SLOW_TOKENS, script=slow(0.5))
    await fast.start()
    await slow_.start()
    yield fast, slow_
    await fast.stop()
    await slow_.stop()


@pytest.fixture
async def server(
    upstreams: tuple[FaultUpstream, FaultUpstream], tmp_path: Path
) -> AsyncIterator[Server]:
    port = free_port()
    config = tmp_path / "config.yaml"
    fast, slow_ = upstreams
    config.write_text(
        CONFIG.format(port=port, grace=GRACE, fast=fast.base_url, slow=slow_.base_url),
        encoding="utf-8",
    )
    env = {**os.environ, "LLMROUTER_CONFIG": str(config)}
    # The log goes to a file: a pipe nobody reads would block the server once full.
    with tempfile.TemporaryFile("w+") as log:
        process = await asyncio.create_subprocess_exec(*LLMROUTER, "serve", env=env, stderr=log)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        served = Server(process, channel, log)
        try:
            await _until_serving(served)
            yield served
        finally:
            await channel.close()
            if process.returncode is None:
                process.kill()
                await process.wait()


async def _until_serving(server: Server) -> None:
    async with asyncio.timeout(30):
        while server.process.returncode is None:
            try:
                check = await server.health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if check.status == SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"llmrouter serve exited early:\n{server.said()}")


async def _follow(call: Any, first: asyncio.Event) -> Ending:
    """Reads a Generate call to its end; sets ``first`` at its first chunk."""
    ending = Ending()
    try:
        async for response in call:
            ending.events.append(response.event)
            if response.event.HasField("chunk"):
                first.set()
    except grpc.aio.AioRpcError as error:
        ending.error = error
    ending.at = time.monotonic()
    return ending


async def _started(stub: svc_grpc.RouterServiceStub, route: str, tokens: int) -> Any:
    """A Generate call on ``route`` and the task reading it, once its first chunk came."""
    first = asyncio.Event()
    call = stub.Generate(iter([start(model=route, sampling={"max_tokens": tokens})]))
    reader = asyncio.create_task(_follow(call, first))
    async with asyncio.timeout(10):
        await first.wait()
    return reader


async def _detached(server: Server) -> str:
    """A generation on ``slow`` whose caller has gone (DETACH); its stream id."""
    detach = {"action": "DISCONNECT_ACTION_DETACH", "detach_ttl": timedelta(seconds=60)}
    request = start(model="slow", on_disconnect=detach, sampling={"max_tokens": SLOW_TOKENS})
    call = server.stub.Generate(iter([request]))
    async for response in call:
        if response.event.HasField("chunk"):
            call.cancel()
            return str(response.event.stream_id)
    raise AssertionError("the detached generation ended before its first chunk")


async def _subscribed(server: Server, stream_id: str) -> asyncio.Task[Ending]:
    """The reader of a Subscribe call following ``stream_id`` from offset 0."""
    requests: asyncio.Queue[svc_pb.SubscribeRequest | None] = asyncio.Queue()

    async def send() -> AsyncIterator[svc_pb.SubscribeRequest]:
        while (request := await requests.get()) is not None:
            yield request

    call = server.stub.Subscribe(send())
    await requests.put(svc_pb.SubscribeRequest(add={"stream_id": stream_id}))

    async def read() -> Ending:
        ending = Ending()
        async for item in call:
            if item.HasField("event"):
                ending.events.append(item.event)
            elif item.HasField("ended"):
                ending.ended, ending.at = item.ended, time.monotonic()
                await requests.put(None)  # half-close: the call ends OK
        return ending

    return asyncio.create_task(read())


async def _until_detached(server: Server, stream_id: str) -> None:
    """Waits until the subscriber is the generation's only consumer (its caller is gone)."""
    async with asyncio.timeout(5):
        while True:
            got = await server.stub.GetStream(svc_pb.GetStreamRequest(stream_id=stream_id))
            if got.status.consumers == 1:
                return
            await asyncio.sleep(0.02)


@dataclass
class Watch:
    """A ``Health/Watch`` call on the server as a whole: each status, with when it came."""

    changes: list[tuple[int, float]] = field(default_factory=list)
    serving: asyncio.Event = field(default_factory=asyncio.Event)
    not_serving: asyncio.Event = field(default_factory=asyncio.Event)

    async def follow(self, server: Server) -> grpc.aio.AioRpcError | None:
        """Records statuses until the call ends; returns its error, if any."""
        call = server.health.Watch(health_pb2.HealthCheckRequest())
        try:
            async for response in call:
                self.changes.append((response.status, time.monotonic()))
                (self.serving if response.status == SERVING else self.not_serving).set()
        except grpc.aio.AioRpcError as error:
            return error
        return None


async def test_sigterm_finishes_what_fits_in_the_grace_and_ends_the_rest_unavailable(
    server: Server,
) -> None:
    watch = Watch()
    watcher = asyncio.create_task(watch.follow(server))
    async with asyncio.timeout(5):
        await watch.serving.wait()
    detached = await _detached(server)
    subscriber = await _subscribed(server, detached)
    await _until_detached(server, detached)
    slow_calls = [await _started(server.stub, "slow", SLOW_TOKENS) for _ in range(PER_ROUTE)]
    fast_calls = await asyncio.gather(
        *(_started(server.stub, "fast", 16) for _ in range(PER_ROUTE))
    )

    server.process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    async with asyncio.timeout(GRACE):
        await watch.not_serving.wait()
    listed = await server.health.List(health_pb2.HealthListRequest(), timeout=1)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in server.stub.Generate(iter([start(model="fast")])):
            pass
    returncode = await asyncio.wait_for(server.process.wait(), GRACE + 5)
    exited = time.monotonic()
    fast = [await call for call in fast_calls]
    slow_ = [await call for call in slow_calls]
    followed = await asyncio.wait_for(subscriber, 5)
    watch_ended = await asyncio.wait_for(watcher, 5)

    assert returncode == 0, server.said()
    assert exited - signalled <= GRACE + 1
    assert [status for status, _ in watch.changes] == [SERVING, NOT_SERVING]
    assert watch_ended is not None
    assert (watch_ended.code(), watch_ended.details()) == (
        grpc.StatusCode.UNAVAILABLE, "the server is shutting down; watch another replica"
    )  # fmt: skip
    not_serving_at = watch.changes[1][1]
    assert all(not_serving_at < ending.at for ending in [*fast, *slow_, followed])
    assert {name: r.status for name, r in listed.statuses.items()} == {
        "": NOT_SERVING,
        "llmrouter.v1.RouterService": NOT_SERVING,
        "fast": NOT_SERVING,
        "slow": NOT_SERVING,
    }
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert refused.value.details() == "the server is shutting down; retry on another replica"

    for ending in fast:
        assert ending.error is None
        assert text(ending.events) == "".join(f" t{i}" for i in range(FAST_TOKENS))
        assert ending.events[-1].completed.finish_reason == ev_pb.FINISH_REASON_STOP

    for ending in slow_:
        _assert_unavailable_at(ending.error, ending.events)
        assert ending.events[-1].HasField("chunk")

    _assert_subscription_unavailable(followed, detached)
    _assert_logged(server.said(), running=2 * PER_ROUTE + 1, finished=PER_ROUTE)


def _assert_subscription_unavailable(followed: Ending, stream_id: str) -> None:
    """The subscription ended UNAVAILABLE with the offset after its last event."""
    ended, offset = followed.ended, len(followed.events)
    assert (ended.stream_id, ended.next_offset) == (stream_id, offset)
    assert ended.error.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert ended.error.message == (
        f"the server shut down; re-attach elsewhere from offset {offset}"
    )
    assert followed.events[-1].HasField("chunk")
    info = error_details_pb2.ErrorInfo()
    assert ended.error.details[0].Unpack(info)
    assert (info.reason, dict(info.metadata)) == (
        "UNAVAILABLE", {"stream_id": stream_id, "offset": str(offset)}
    )  # fmt: skip


def _assert_logged(said: str, running: int, finished: int) -> None:
    """One line as the shutdown began, one when it was done."""
    began = f"shutting down: NOT_SERVING, refusing new generations; {running} running get 2s"
    assert said.count(began) == 1, said
    done = (
        rf"shut down in \d+\.\ds: {finished} generations finished within the grace, "
        rf"{running - finished} ended UNAVAILABLE\n"
    )
    assert len(re.findall(done, said)) == 1, said


def _assert_unavailable_at(error: grpc.aio.AioRpcError | None, events: list[Any]) -> None:
    """The call ended UNAVAILABLE with its stream id and the offset after its last event."""
    assert error is not None
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    offset = len(events)
    assert error.details() == f"the server shut down; re-attach elsewhere from offset {offset}"
    info = error_info(error)
    assert (info.reason, dict(info.metadata)) == (
        "UNAVAILABLE", {"stream_id": events[0].stream_id, "offset": str(offset)}
    )  # fmt: skip


async def test_closers_run_in_order_after_the_server_stopped_even_past_a_failing_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = ScriptedBackend("fake", words("a b"))
    running = await start_server(scripted_config("fake"), {"fake": backend})
    ran: list[tuple[str, bool]] = []

    def metrics_server() -> None:
        ran.append(("metrics", running.generations.accepting))

    def broken() -> None:
        raise RuntimeError("broken closer")

    async def telemetry() -> None:
        await asyncio.sleep(0)
        ran.append(("telemetry", running.generations.accepting))

    running.closers += [metrics_server, broken, telemetry]
    with caplog.at_level(logging.INFO, logger="llmrouter_server.app"):
        await running.stop(0)

    assert ran == [("metrics", False), ("telemetry", False)]
    failures = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in failures] == [f"shutdown: {broken!r} failed"]
    done = caplog.records[-1].getMessage()
    assert done.endswith(": 0 generations finished within the grace, 0 ended UNAVAILABLE")
