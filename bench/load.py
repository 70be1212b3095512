"""A load client process: concurrent streams against one gateway, timings as JSON.

``--kind grpc`` calls llmrouter's Generate with the generated Python stubs
(one event per message, read as fast as they come); ``--kind http`` posts to
an OpenAI-compatible ``/chat/completions`` with httpx and reads its SSE lines
(every HTTP gateway gets the same client). ``--concurrency`` workers each run
``--per-worker`` streams one after another, starting together at
``--start-at`` (a ``time.time()``), so several processes load one gateway at
once. Every stream's text is checked against what the upstream sent
(``bench/upstream.py``). Prints one JSON object:

``{"streams": [{"start", "ttft", "end", "tokens", "events", "error", "gaps"}]}``
with times in seconds from the stream's request (``gaps``: milliseconds between
text-bearing events, with ``--gaps``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc
from upstream import expected_text

STREAMS_PER_CHANNEL = 50
"""gRPC streams sharing one connection (the server allows 100 by default)."""


@dataclass
class Result:
    """One stream's timings."""

    start: float = 0.0
    ttft: float | None = None
    end: float | None = None
    tokens: int = 0
    events: int = 0
    error: str = ""
    gaps: list[float] = field(default_factory=list)


class Recorder:
    """Collects one stream's text-bearing events."""

    def __init__(self, keep_gaps: bool) -> None:
        self.result = Result(start=time.time())
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


async def grpc_stream(stub: Any, model: str, tokens: int, mode: int, gaps: bool) -> Result:
    """One Generate call; the text of its chunk events."""
    recorder = Recorder(gaps)
    start = gen_pb.StartGeneration(
        prompt="bench",
        model=model,
        sampling=gen_pb.SamplingParams(max_tokens=tokens),
        stream_options=gen_pb.StreamOptions(coalescing=gen_pb.Coalescing(mode=mode)),
    )
    try:
        async for response in stub.Generate(iter([svc_pb.GenerateRequest(start=start)])):
            chunk = response.event.chunk
            if chunk.text:
                recorder.text(chunk.text)
    except grpc.aio.AioRpcError as error:
        recorder.result.error = f"{error.code().name}: {error.details()}"
    return recorder.done(tokens)


async def http_stream(  # noqa: PLR0913 - one request is all of these
    client: httpx.AsyncClient, url: str, headers: dict[str, str], model: str, tokens: int,
    gaps: bool,
) -> Result:  # fmt: skip
    """One streaming chat completion; the text of its SSE chunks."""
    recorder = Recorder(gaps)
    body = {"model": model, "max_tokens": tokens, "stream": True,
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
    return recorder.done(tokens)


async def run(args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    delay = args.start_at - time.time()
    if args.kind == "grpc":
        channels = [
            grpc.aio.insecure_channel(args.target, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(max(1, -(-args.concurrency // STREAMS_PER_CHANNEL)))
        ]
        stubs = [svc_grpc.RouterServiceStub(channel) for channel in channels]
        mode = gen_pb.CoalesceMode.Value(f"COALESCE_MODE_{args.coalescing.upper()}")

        def one(worker: int) -> Any:
            stub = stubs[worker // STREAMS_PER_CHANNEL]
            return grpc_stream(stub, args.model, args.tokens, mode, args.gaps)

        for channel in channels:
            await channel.channel_ready()
    else:
        headers = dict(pair.split("=", 1) for pair in args.header)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        client = httpx.AsyncClient(timeout=600, limits=limits)
        url = args.target.rstrip("/") + "/chat/completions"

        def one(worker: int) -> Any:
            return http_stream(client, url, headers, args.model, args.tokens, args.gaps)

    await asyncio.sleep(max(delay, 0))

    async def worker(index: int) -> None:
        for _ in range(args.per_worker):
            results.append(await one(index))  # noqa: PERF401 - one after another

    await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=("grpc", "http"), required=True)
    parser.add_argument("--target", required=True, help="host:port (grpc) or a /v1 base URL")
    parser.add_argument("--header", action="append", default=[], help="NAME=VALUE (http)")
    parser.add_argument("--model", default="fast")
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--per-worker", type=int, default=1)
    parser.add_argument("--coalescing", default="token", choices=("token", "adaptive"))
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--gaps", action="store_true")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    json.dump({"streams": [asdict(r) for r in results]}, sys.stdout)


if __name__ == "__main__":
    main()
