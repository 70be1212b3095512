"""Client commands of the ``llmrouter`` CLI, over the generated stubs.

Each returns its exit status, or raises a ``CliError`` that names the cause
and the remedy in one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from llmrouter_server.cli.errors import (
    EXIT_FAILURE,
    EXIT_OK,
    CliError,
    ServerRefused,
    rpc_failure,
)
from llmrouter_server.cli.terminal import Terminal

MODELS_TIMEOUT = 10.0
"""Seconds ``models`` waits for the list."""
HEALTH_TIMEOUT = 5.0
"""Seconds ``health`` waits for each answer."""


async def generate(args: argparse.Namespace) -> int:
    """Streams one generation: text to stdout, a live progress line to stderr."""
    start = _start(args)
    terminal = Terminal(sys.stdout, sys.stderr)
    async with args.credentials.channel(args.address) as channel:
        stub = svc_grpc.RouterServiceStub(channel)
        try:
            async for response in stub.Generate(_once(start)):
                _show(terminal, response.event)
        except grpc.aio.AioRpcError as error:
            terminal.end_line()
            raise _failure(error, args) from error
    return EXIT_OK


async def models(args: argparse.Namespace) -> int:
    """Prints every route and its targets."""
    async with args.credentials.channel(args.address) as channel:
        stub = svc_grpc.RouterServiceStub(channel)
        try:
            reply = await stub.ListModels(svc_pb.ListModelsRequest(), timeout=MODELS_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            raise _failure(error, args, MODELS_TIMEOUT) from error
    for route in reply.routes:
        marker = " (default)" if route.is_default else ""
        print(f"{route.name}{marker}")
        for target in route.targets:
            kind = ops_pb.BackendKind.Name(target.kind).removeprefix("BACKEND_KIND_").lower()
            print(
                f"  {target.backend}/{target.model}  [{kind}]  "
                f"in flight {target.in_flight}/{target.max_concurrency}, queued {target.queued}"
            )
    return EXIT_OK


async def health(args: argparse.Namespace) -> int:
    """Prints the service's status; exits 0 when it is SERVING, 1 otherwise."""
    async with args.credentials.channel(args.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=args.service)
        try:
            reply = await stub.Check(request, timeout=HEALTH_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                raise ServerRefused(await _unknown_service(stub, args.service)) from error
            raise _failure(error, args, HEALTH_TIMEOUT) from error
    print(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
    return EXIT_OK if reply.status == health_pb2.HealthCheckResponse.SERVING else EXIT_FAILURE


def _failure(
    error: grpc.aio.AioRpcError, args: argparse.Namespace, timeout: float | None = None
) -> CliError:
    """The one-line error for a failed call to the server the command reached."""
    return rpc_failure(error, args.address, timeout=timeout, credentials=args.credentials)


async def _unknown_service(stub: Any, service: str) -> str:
    """Says the service has no status, listing the known names if the server can.

    The list comes from ``grpc.health.v1.Health/List``; a server without it
    (UNIMPLEMENTED, UNKNOWN) or any other failure of that call gets the message
    without the list, since the list is only a hint.
    """
    message = f"no health status for service {service!r}"
    try:
        reply = await stub.List(health_pb2.HealthListRequest(), timeout=HEALTH_TIMEOUT)
    except grpc.aio.AioRpcError:
        return f'{message}; give a route name, llmrouter.v1.RouterService, or "" for the server'
    known = ", ".join(name or '""' for name in sorted(reply.statuses))
    return f"{message} (known: {known})"


def _show(terminal: Terminal, event: ev_pb.StreamEvent) -> None:
    if event.HasField("chunk"):
        terminal.text(event.chunk.text)
        terminal.progress(event.chunk.progress)
    elif event.HasField("queued"):
        terminal.status(f"queued at position {event.queued.position}")
    elif event.HasField("completed"):
        terminal.done(event.completed)


def _start(args: argparse.Namespace) -> svc_pb.GenerateRequest:
    start = gen_pb.StartGeneration(
        model=args.model,
        stop=args.stop,
        stream_options=gen_pb.StreamOptions(include_progress=True),
    )
    if args.system:
        start.messages.add(role=gen_pb.CHAT_ROLE_SYSTEM, content=args.system)
        start.messages.add(role=gen_pb.CHAT_ROLE_USER, content=args.prompt)
    else:
        start.prompt = args.prompt
    for name in ("max_tokens", "temperature", "seed"):
        value = getattr(args, name)
        if value is not None:
            setattr(start.sampling, name, value)
    if args.json:
        start.response_format.format = gen_pb.OUTPUT_FORMAT_JSON
    return svc_pb.GenerateRequest(start=start)


async def _once(request: svc_pb.GenerateRequest) -> AsyncIterator[svc_pb.GenerateRequest]:
    yield request
