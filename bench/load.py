"""A load client process: concurrent streams against one gateway, timings as JSON.

``--kind grpc`` calls llmrouter's Generate with the generated Python stubs
(one event per message, read as fast as they come, 50 streams per channel,
one connection per channel); ``--kind http`` posts to an OpenAI-compatible
``/chat/completions`` with httpx and reads its SSE lines (every HTTP gateway
gets the same client); ``--kind ws`` calls Generate through llmrouter's WebSocket
gateway (``ws://HOST:PORT/v1/ws``), 50 calls multiplexed per socket, with the
``websockets`` client. ``--concurrency`` workers each run streams one after
another: ``--per-worker`` of them, or as many as start within ``--duration``
seconds (at least one). They start together at ``--start-at`` (a
``time.time()``), so several processes load one gateway at once, or spread
over ``--stagger`` seconds, so starts arrive evenly and the concurrency is
steady. Streams still running at ``--deadline`` (a ``time.time()``) are
cancelled and count as errors. Every stream's text is checked against what
the upstream sent (``bench/upstream.py``). Prints one JSON object:

``{"streams": [{"start", "round", "ttft", "end", "tokens", "events", "error", "gaps"}],
"cpu_seconds": ...}`` with times in seconds from the stream's request (``round``:
the stream's place in its worker's sequence; ``gaps``: milliseconds between
text-bearing events, with ``--gaps``; ``cpu_seconds``: this process's CPU).

``--serve`` keeps the process (and its connections) for many batches: each
stdin line is a batch as JSON (the options above, ``_`` for ``-``); the process
opens the connections it needs and answers ``{"ready": true}``, then takes a line
``{"start_at": T, "deadline": D}`` and answers with the batch's JSON object, on one line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent))

from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc
from upstream import expected_text

DEADLINE = "DEADLINE: still streaming at the run's deadline"
STREAMS_PER_CHANNEL = 50
"""gRPC streams sharing one connection (the server allows 100 by default)."""


@dataclass
class Result:
    """One stream's timings."""

    start: float = 0.0
    round: int = 0
    ttft: float | None = None
    end: float | None = None
    tokens: int = 0
    events: int = 0
    error: str = ""
    gaps: list[float] = field(default_factory=list)


class Recorder:
    """Collects one stream's text-bearing events."""

    def __init__(self, keep_gaps: bool, round_: int) -> None:
        self.result = Result(start=time.time(), round=round_)
        self._began = time.perf_counter()
        self._last = 0.0
        self._keep_gaps = keep_gaps
        self._parts: list[str] = []

    def text(self, text: str) -> None:
        now = time.perf_counter() - self._began
        if self.result.ttft is None:
            self.result.ttft = now
        elif self._keep_gaps:
            self.result.gaps.append(round((now - self._last) * 1000, 3))
        self._last = now
        self.result.events += 1
        self._parts.append(text)

    def done(self, tokens: int) -> Result:
        self.result.end = time.perf_counter() - self._began
        got = "".join(self._parts)
        self.result.tokens = got.count(" ")
        if not self.result.error and got != expected_text(tokens):
            self.result.error = f"text differs: got {len(got)} chars, {got[:40]!r}..."
        return self.result


async def grpc_stream(stub: Any, spec: argparse.Namespace, recorder: Recorder) -> None:
    """One Generate call; the text of its chunk events."""
    mode = gen_pb.CoalesceMode.Value(f"COALESCE_MODE_{spec.coalescing.upper()}")
    start = gen_pb.StartGeneration(
        prompt="bench",
        model=spec.model,
        sampling=gen_pb.SamplingParams(max_tokens=spec.tokens),
        stream_options=gen_pb.StreamOptions(coalescing=gen_pb.Coalescing(mode=mode)),
    )
    try:
        async for response in stub.Generate(iter([svc_pb.GenerateRequest(start=start)])):
            chunk = response.event.chunk
            if chunk.text:
                recorder.text(chunk.text)
    except grpc.aio.AioRpcError as error:
        recorder.result.error = f"{error.code().name}: {error.details()}"


async def http_stream(
    client: httpx.AsyncClient, spec: argparse.Namespace, recorder: Recorder
) -> None:
    """One streaming chat completion; the text of its SSE chunks."""
    url = spec.target.rstrip("/") + "/chat/completions"
    headers = dict(pair.split("=", 1) for pair in spec.header)
    body = {"model": spec.model, "max_tokens": spec.tokens, "stream": True,
            "messages": [{"role": "user", "content": "bench"}]}  # fmt: skip
    try:
        async with client.stream("POST", url, json=body, headers=headers) as response:
            if response.status_code != 200:
                recorder.result.error = f"HTTP {response.status_code}: {await response.aread()!r}"
            async for line in response.aiter_lines():
                if not line.startswith("data:") or line.endswith("[DONE]"):
                    continue
                for choice in json.loads(line[5:]).get("choices") or ():
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        recorder.text(text)
    except httpx.HTTPError as error:
        recorder.result.error = f"{type(error).__name__}: {error}"


class Socket:
    """One gateway WebSocket; each call's frames go to that call's queue."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.calls: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.next_id = 0
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for text in self.ws:
            frame = json.loads(text)
            self.calls[frame["id"]].put_nowait(frame)

    def open(self) -> tuple[str, asyncio.Queue[dict[str, Any]]]:
        self.next_id += 1
        call_id = str(self.next_id)
        self.calls[call_id] = asyncio.Queue()
        return call_id, self.calls[call_id]


async def ws_stream(socket: Socket, spec: argparse.Namespace, recorder: Recorder) -> None:
    """One Generate call over the gateway; the text of its chunk events."""
    mode = f"COALESCE_MODE_{spec.coalescing.upper()}"
    start = {"prompt": "bench", "model": spec.model, "sampling": {"maxTokens": spec.tokens},
             "streamOptions": {"coalescing": {"mode": mode}}}  # fmt: skip
    call_id, frames = socket.open()
    try:
        await socket.ws.send(json.dumps({"id": call_id, "method": "Generate",
                                         "message": {"start": start}, "end": True}))  # fmt: skip
        while "status" not in (frame := await frames.get()):
            text = frame["message"].get("event", {}).get("chunk", {}).get("text")
            if text:
                recorder.text(text)
        if frame["status"].get("code", 0) != 0:
            recorder.result.error = f"status {frame['status']}"
    finally:
        del socket.calls[call_id]


class Connections:
    """The channels and HTTP clients of a process, kept across batches."""

    def __init__(self) -> None:
        self._stubs: dict[str, list[Any]] = {}
        self._client: httpx.AsyncClient | None = None
        self._sockets: dict[str, list[Socket]] = {}

    async def prepare(self, spec: argparse.Namespace) -> Callable[[int, Recorder], Awaitable[None]]:
        """Opens what ``spec`` needs; a function running worker ``i``'s next stream."""
        if spec.kind == "http":
            if self._client is None:
                limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
                self._client = httpx.AsyncClient(timeout=600, limits=limits)
            client = self._client
            return lambda _, recorder: http_stream(client, spec, recorder)
        if spec.kind == "ws":
            sockets = self._sockets.setdefault(spec.target, [])
            while len(sockets) * STREAMS_PER_CHANNEL < spec.concurrency:
                ws = await connect(spec.target, subprotocols=["llmrouter.v1"], max_size=None)
                sockets.append(Socket(ws))
            return lambda i, recorder: ws_stream(sockets[i // STREAMS_PER_CHANNEL], spec, recorder)
        stubs = self._stubs.setdefault(spec.target, [])
        options = [("grpc.use_local_subchannel_pool", 1)]
        while len(stubs) * STREAMS_PER_CHANNEL < spec.concurrency:
            channel = grpc.aio.insecure_channel(spec.target, options=options)
            await channel.channel_ready()
            stubs.append(svc_grpc.RouterServiceStub(channel))
        return lambda i, recorder: grpc_stream(stubs[i // STREAMS_PER_CHANNEL], spec, recorder)


async def batch(spec: argparse.Namespace, one: Callable[[int, Recorder], Awaitable[None]]) -> dict:
    """Runs the streams of ``spec`` from ``spec.start_at``; its JSON object."""
    results: list[Result] = []
    cpu = time.process_time()
    await asyncio.sleep(max(spec.start_at - time.time(), 0))

    async def worker(index: int) -> None:
        await asyncio.sleep(spec.stagger * (index * spec.processes + spec.process) / spec.total)
        round_ = 0
        while _another(spec, round_):
            recorder = Recorder(spec.gaps, round_)
            try:
                left = spec.deadline - time.time() if spec.deadline else None
                await asyncio.wait_for(one(index, recorder), left)
            except TimeoutError:
                recorder.result.error = DEADLINE
            if recorder.result.error and spec.deadline and time.time() >= spec.deadline:
                recorder.result.error = DEADLINE  # the client's cancel, not the gateway's error
            results.append(recorder.done(spec.tokens))
            if recorder.result.error:
                return  # a worker stops at its first error
            round_ += 1

    await asyncio.gather(*(worker(i) for i in range(spec.concurrency)))
    return {"streams": [asdict(r) for r in results], "cpu_seconds": time.process_time() - cpu}


def _another(spec: argparse.Namespace, round_: int) -> bool:
    """Whether a worker that has run ``round_`` streams starts another."""
    now = time.time()
    if spec.deadline and now >= spec.deadline:
        return False
    if spec.duration:
        return round_ == 0 or now < spec.start_at + spec.duration
    return round_ < spec.per_worker


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=("grpc", "http", "ws"), default="grpc")
    parser.add_argument("--target", default="", help="host:port (grpc) or a /v1 base URL")
    parser.add_argument("--header", action="append", default=[], help="NAME=VALUE (http)")
    parser.add_argument("--model", default="fast")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--per-worker", type=int, default=1)
    parser.add_argument("--duration", type=float, default=0.0)
    parser.add_argument("--stagger", type=float, default=0.0)
    parser.add_argument("--deadline", type=float, default=0.0)
    parser.add_argument("--coalescing", default="token", choices=("token", "adaptive"))
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--gaps", action="store_true")
    # This process's place among those running one batch (for --stagger).
    parser.add_argument("--process", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--total", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true")
    return parser


def _complete(spec: argparse.Namespace) -> argparse.Namespace:
    spec.total = spec.total or spec.concurrency * spec.processes
    return spec


async def serve() -> None:
    """Batches from stdin, results to stdout, one line each."""
    loop = asyncio.get_running_loop()
    connections = Connections()
    defaults = vars(parser().parse_args([]))
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        spec = _complete(argparse.Namespace(**{**defaults, **json.loads(line)}))
        one = await connections.prepare(spec)
        print(json.dumps({"ready": True}), flush=True)
        go = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
        spec.start_at, spec.deadline = go["start_at"], go.get("deadline", 0.0)
        print(json.dumps(await batch(spec, one)), flush=True)


async def once(spec: argparse.Namespace) -> None:
    one = await Connections().prepare(spec)
    json.dump(await batch(spec, one), sys.stdout)


def main() -> None:
    args = parser().parse_args()
    asyncio.run(serve() if args.serve else once(_complete(args)))


if __name__ == "__main__":
    main()
