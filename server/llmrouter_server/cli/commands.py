"""Client commands of the ``llmrouter`` CLI, over the generated stubs."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import AsyncIterator
from typing import TextIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc


async def generate(args: argparse.Namespace) -> int:
    """Streams one generation: text to stdout, a live progress line to stderr."""
    start = _start(args)
    terminal = _Terminal(sys.stdout, sys.stderr)
    async with grpc.aio.insecure_channel(args.address) as channel:
        stub = svc_grpc.RouterServiceStub(channel)
        try:
            async for response in stub.Generate(_once(start)):
                event = response.event
                if event.HasField("chunk"):
                    terminal.text(event.chunk.text)
                    terminal.progress(event.chunk.progress)
                elif event.HasField("queued"):
                    terminal.status(f"queued at position {event.queued.position}")
                elif event.HasField("completed"):
                    terminal.done(event.completed)
        except grpc.aio.AioRpcError as error:
            terminal.error(f"{error.code().name}: {error.details()}")
            return 1
    return 0


async def models(args: argparse.Namespace) -> int:
    """Prints every route and its targets."""
    async with grpc.aio.insecure_channel(args.address) as channel:
        reply = await svc_grpc.RouterServiceStub(channel).ListModels(svc_pb.ListModelsRequest())
    for route in reply.routes:
        marker = " (default)" if route.is_default else ""
        print(f"{route.name}{marker}")
        for target in route.targets:
            kind = ops_pb.BackendKind.Name(target.kind).removeprefix("BACKEND_KIND_").lower()
            print(
                f"  {target.backend}/{target.model}  [{kind}]  "
                f"in flight {target.in_flight}/{target.max_concurrency}, queued {target.queued}"
            )
    return 0


async def health(args: argparse.Namespace) -> int:
    """Exits 0 when the service is SERVING, 1 otherwise."""
    async with grpc.aio.insecure_channel(args.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=args.service), timeout=5)
        except grpc.aio.AioRpcError as error:
            print(f"{error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(status)
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


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


class _Terminal:
    """Streams text to stdout with a live status after it on a terminal.

    The status is drawn after the text with the cursor saved and restored, so
    the next text overwrites it; it is drawn only when it fits on the current
    line, so it never wraps or scrolls. Elsewhere only a summary goes to stderr.
    """

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err
        self._live = out.isatty()
        self._width = shutil.get_terminal_size().columns
        self._column = 0

    def text(self, text: str) -> None:
        self._out.write("\033[K" + text if self._live else text)
        tail = text.rsplit("\n", 1)
        self._column = len(tail[-1]) if len(tail) > 1 else self._column + len(text)
        self._column %= max(self._width, 1)
        self._out.flush()

    def progress(self, progress: ev_pb.Progress) -> None:
        self.status(
            f"{progress.completion_tokens}/{progress.max_tokens} tokens, "
            f"{progress.tokens_per_second:.1f} tokens/s"
        )

    def status(self, status: str) -> None:
        if self._live and self._column + len(status) + 3 < self._width:
            self._out.write(f"\0337 \033[2m[{status}]\033[0m\0338")
            self._out.flush()

    def error(self, message: str) -> None:
        self.text("")
        self._out.write("\n")
        self._err.write(f"llmrouter: {message}\n")

    def done(self, completed: ev_pb.Completed) -> None:
        self.text("\n")
        reason = ev_pb.FinishReason.Name(completed.finish_reason).removeprefix("FINISH_REASON_")
        timings = completed.timings
        self._err.write(
            f"[{completed.usage.completion_tokens} tokens, "
            f"{timings.tokens_per_second:.1f} tokens/s, "
            f"first token {timings.time_to_first_token.ToMilliseconds()} ms, "
            f"{reason.lower()}, {completed.backend}/{completed.model}]\n"
        )
