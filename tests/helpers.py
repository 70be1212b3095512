"""Shared test helpers: a running server with a stub, and message builders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from llmrouter_server.app import RunningServer, start_server
from llmrouter_server.auth.principal import OPEN
from llmrouter_server.backends.base import Backend
from llmrouter_server.config import Config

PROMPT = "Write a story about a lighthouse keeper."

DetailT = TypeVar("DetailT", bound=Message)


@dataclass
class Served:
    """A server on a loopback port 0 and a stub connected to it."""

    server: RunningServer
    channel: grpc.aio.Channel
    stub: svc_grpc.RouterServiceStub

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def backend(self, name: str) -> Any:
        return self.server.generations.router.backend(name)


def loopback_config(**overrides: Any) -> Config:
    """A configuration listening on 127.0.0.1, port 0."""
    values: dict[str, Any] = {"server": {"host": "127.0.0.1", "port": 0}}
    values.update(overrides)
    return Config(**values)


def scripted_config(*names: str, **overrides: Any) -> Config:
    """A loopback configuration with a backend ``NAME`` and a route ``NAME-model`` to it
    for each name, the first route the default.

    For scripted backends, given to ``serving`` by the same names: the configured
    backends are placeholders that are never built.
    """
    return loopback_config(
        backends={name: {"kind": "openai", "api_key_env": None} for name in names},
        routes={f"{name}-model": {"targets": [{"backend": name, "model": "m"}]} for name in names},
        default_route=f"{names[0]}-model",
        **overrides,
    )


@asynccontextmanager
async def serving(
    config: Config, backends: Mapping[str, Backend] | None = None, **options: Any
) -> AsyncIterator[Served]:
    """Starts a server in this event loop (``options`` go to ``start_server``); stops it on exit."""
    server = await start_server(config, backends, **options)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield Served(server, channel, svc_grpc.RouterServiceStub(channel))
    finally:
        await channel.close()
        await server.stop(0)


def start(prompt: str = PROMPT, **fields: Any) -> svc_pb.GenerateRequest:
    """A Generate request starting a greedy generation unless told otherwise."""
    fields["sampling"] = {"temperature": 0.0, "max_tokens": 16, **fields.get("sampling", {})}
    return svc_pb.GenerateRequest(start=gen_pb.StartGeneration(prompt=prompt, **fields))


def cancel() -> svc_pb.GenerateRequest:
    """A Generate request cancelling the call's generation."""
    return svc_pb.GenerateRequest(cancel=gen_pb.CancelGeneration(reason="test"))


async def generate(
    stub: svc_grpc.RouterServiceStub, *requests: svc_pb.GenerateRequest
) -> list[Any]:
    """Runs one Generate call with the given requests; returns its events."""
    return [response.event async for response in stub.Generate(iter(requests))]


def kinds(events: list[Any]) -> list[str]:
    """The kind of each event, e.g. ["started", "chunk", "completed"]."""
    return [event.WhichOneof("kind") for event in events]


def text(events: list[Any]) -> str:
    """The concatenated text of the chunk events."""
    return "".join(event.chunk.text for event in events if event.HasField("chunk"))


def status_detail(error: grpc.aio.AioRpcError, kind: type[DetailT]) -> DetailT | None:
    """The first detail of type ``kind`` in a failed call's status; None without one."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert isinstance(status, status_pb2.Status)
    for detail in status.details:
        if detail.Is(kind.DESCRIPTOR):
            found = kind()
            detail.Unpack(found)
            return found
    return None


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo detail of a failed call."""
    info = status_detail(error, error_details_pb2.ErrorInfo)
    if info is None:
        raise AssertionError("no ErrorInfo in the status details")
    return info


async def read_responses(call: Any, limit: int | None = None) -> list[Any]:
    """Reads responses with ``call.read()`` until the end, or until ``limit`` of them."""
    responses: list[Any] = []
    while limit is None or len(responses) < limit:
        response = await call.read()
        if response is grpc.aio.EOF:
            break
        responses.append(response)
    return responses


async def read_events(call: Any, limit: int | None = None) -> list[Any]:
    """Reads events with ``call.read()`` until the end, or until ``limit`` events."""
    return [response.event for response in await read_responses(call, limit)]


async def eventually(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    """Waits until ``predicate()`` holds, failing after ``seconds``."""
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110 - polls state owned by the server under test
            await asyncio.sleep(0.01)


TIGHT_CHANNEL = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)]
"""Client channel options that keep HTTP/2's window small and fixed (no BDP growth)."""


def stub_for(served: Served, options: list[tuple[str, Any]]) -> tuple[grpc.aio.Channel, Any]:
    """A second channel (another connection) to the same server."""
    channel = grpc.aio.insecure_channel(served.address, options=options)
    return channel, svc_grpc.RouterServiceStub(channel)


async def stable(read: Callable[[], int], quiet: float = 0.5, seconds: float = 15.0) -> int:
    """Waits until ``read()`` stops changing for ``quiet`` seconds; returns its value."""
    async with asyncio.timeout(seconds):
        value = read()
        while True:
            await asyncio.sleep(quiet)
            if read() == value:
                return value
            value = read()


def control_request(request_id: str = "", **command: Any) -> Any:
    """A Control request with one command, e.g. ``pause={"stream_id": "x"}``."""
    return svc_pb.ControlRequest(request_id=request_id, **command)


NOT_READING = {"mode": "FLOW_MODE_CREDIT", "initial_credits": 1}
"""CREDIT flow with one credit: the caller takes ``started`` and nothing after it,
exactly as a gRPC reader that stopped."""


async def started_call(served: Served, prompt: str, **fields: Any) -> tuple[Any, Any, Any]:
    """A Generate call, its generation (from the registry), and the ``started`` event
    its caller read."""
    call = served.stub.Generate()
    await call.write(start(prompt, **fields))
    first = await read_events(call, limit=1)
    assert kinds(first) == ["started"]
    generation = served.server.generations.registry.get(OPEN, first[0].stream_id)
    return call, generation, first[0]


def prompts(backend: Any) -> list[str]:
    """The first message of every request a scripted backend got, in order."""
    return [request.messages[0].content for request in backend.requests]
