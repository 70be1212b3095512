"""Fairness under stalled readers: a well-behaved caller's time to first token, with and
without 200 Generate callers that stopped reading.

``llmrouter serve`` (one core) routes to ``bench/upstream.py`` (the other core, with
this process) through one backend of ``max_concurrency`` 64, model ``paced-10`` (a
token every 10 ms). A well-behaved caller makes ``--calls`` calls one after another,
each reading its 64 tokens to the end; its time to first token (TTFT) is from the
request to the first text.

* ``alone``: nobody else calls.
* ``with stalled readers``: first ``--stalled`` callers each start a long generation,
  read its first event and never read again (``--stall credit``: CREDIT flow with one
  credit, never renewed; ``--stall window``: AUTO flow on a channel with a fixed 1 KiB
  HTTP/2 window, the reader stopped). 64 of them take the slots, the rest queue; once
  that has not changed for ``--settle`` seconds, the well-behaved caller makes its
  calls, the stalled callers all still there. Its first call finds the slots held and
  136 generations queued ahead of it, as in the issue.
* ``arriving as they start``: one call made as soon as the stalled callers have their
  first event (informative: the generations holding the slots have not stopped reading
  for long yet, so it waits until they have for ``release_contended_after_seconds``).

Prints one JSON line and writes ``bench/results/fairness.json``: the TTFTs (median,
p90, max, in ms; the first call's too) per scenario, and two ratios to the median
TTFT alone (the goal is at most 2): ``first_call_ratio``, the call that finds the
slots held and the queue full, and ``ttft_ratio``, the median of all calls. Both
count: a server that lets the first call wait until the stalled generations are
released (``release_after_seconds``) serves the later ones at once, since nobody
holds a slot by then.

Usage: ``python bench/fairness.py [--stalled 200] [--calls 30] [--stall credit|window]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import processes as proc
from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc
from processes import BENCH, GATEWAY_CPUS, LOAD_CPUS, PYTHON
from upstream import expected_text

SLOTS = 64
"""``backends.upstream.max_concurrency``."""
MODEL = "paced-10"
"""Every generation's model: a token every 10 ms, as a real model streams (an upstream
writing as fast as its sockets take spends seconds of its core filling the socket
buffers of each stalled stream, which would measure the upstream, not the router)."""
TOKENS = 64
"""Tokens of each well-behaved call."""
STALLED_TOKENS = 1_000_000
"""Tokens a stalled caller asks for: it stalls long before the end."""
TIGHT_WINDOW = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)]
"""Channel options that keep HTTP/2's window small and fixed (no BDP growth)."""
CALLS_PER_CHANNEL = 50
"""Stalled calls sharing one connection."""


def _start(tokens: int, flow: dict[str, Any] | None = None) -> svc_pb.GenerateRequest:
    return svc_pb.GenerateRequest(
        start=gen_pb.StartGeneration(
            prompt="fairness", model=MODEL, sampling={"max_tokens": tokens}, flow=flow or {}
        )
    )


async def _ttft(stub: svc_grpc.RouterServiceStub) -> float:
    """One well-behaved call read to the end; seconds to its first text."""
    began = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    async for response in stub.Generate(iter([_start(TOKENS)])):
        if response.event.HasField("chunk"):
            first = first or time.perf_counter() - began
            parts.append(response.event.chunk.text)
    if first is None or "".join(parts) != expected_text(TOKENS):
        raise RuntimeError(f"a well-behaved call got {''.join(parts)[:60]!r}")
    return first


async def _ttfts(stub: svc_grpc.RouterServiceStub, calls: int) -> list[float]:
    return [await _ttft(stub) for _ in range(calls)]


async def _stall(channels: list[grpc.aio.Channel], count: int, how: str) -> list[Any]:
    """``count`` calls that read their first event and then nothing."""
    flow = {"mode": "FLOW_MODE_CREDIT", "initial_credits": 1} if how == "credit" else None
    calls = []
    for index in range(count):
        stub = svc_grpc.RouterServiceStub(channels[index // CALLS_PER_CHANNEL])
        call = stub.Generate(iter([_start(STALLED_TOKENS, flow)]))
        calls.append(call)
    for call in calls:
        await call.read()  # the first event; never another
    return calls


async def _held(stub: svc_grpc.RouterServiceStub, quiet: float, seconds: float = 120) -> None:
    """Waits until the backend's slots in use and its queue have not changed for
    ``quiet`` seconds (the stalled callers hold and wait)."""
    deadline = time.monotonic() + seconds
    last: tuple[int, int] | None = None
    since = time.monotonic()
    while time.monotonic() < deadline:
        models = await stub.ListModels(svc_pb.ListModelsRequest())
        target = next(r for r in models.routes if r.name == MODEL).targets[0]
        now = (target.in_flight, target.queued)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the stalled callers did not settle: in flight, queued = {last}")


def _summary(ttfts: list[float]) -> dict[str, float]:
    ms = sorted(1000 * t for t in ttfts)
    return {
        "calls": len(ms),
        "median_ms": round(statistics.median(ms), 2),
        "p90_ms": round(proc.percentile(ms, 90), 2),
        "max_ms": round(ms[-1], 2),
    }


async def _scenario(port: int, args: argparse.Namespace, *, stalled: int) -> dict[str, Any]:
    address = f"127.0.0.1:{port}"
    options = [("grpc.use_local_subchannel_pool", 1)]
    async with grpc.aio.insecure_channel(address, options=options) as channel:
        stub = svc_grpc.RouterServiceStub(channel)
        await _ttfts(stub, 3)  # warm up: connections, caches
        extra = TIGHT_WINDOW if args.stall == "window" else []
        channels = [
            grpc.aio.insecure_channel(address, options=[*options, *extra])
            for _ in range(-(-stalled // CALLS_PER_CHANNEL))
        ]
        try:
            calls = await _stall(channels, stalled, args.stall)
            if args.arriving:
                return {"first_ttft_ms": round(1000 * await _ttft(stub), 2)}
            if stalled:
                await _held(stub, quiet=args.settle)
            cpu = {name: proc.cpu_seconds(pid) for name, pid in args.pids.items()}
            began = time.perf_counter()
            ttfts = await _ttfts(stub, args.calls)
            seconds = time.perf_counter() - began
            busy = {
                f"{name}_cpu_percent": round(100 * (proc.cpu_seconds(pid) - cpu[name]) / seconds)
                for name, pid in args.pids.items()
            }
            for call in calls:
                call.cancel()
            return {"first_ttft_ms": round(1000 * ttfts[0], 2), "ttft": _summary(ttfts), **busy}
        finally:
            for each in channels:
                await each.close()


SCENARIOS = {"alone": 0, "with_stalled_readers": -1, "arriving_as_they_start": -1}
"""Each scenario's stalled callers (-1: ``--stalled``)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stalled", type=int, default=200)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--stall", choices=("credit", "window"), default="credit")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds without change")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "fairness.json")
    args = parser.parse_args()
    os.sched_setaffinity(0, LOAD_CPUS)  # the callers share the upstream's core
    results: dict[str, Any] = {"stalled": args.stalled, "stall": args.stall, "slots": SLOTS}
    with (
        tempfile.TemporaryDirectory() as scratch,
        proc.server([PYTHON, str(BENCH / "upstream.py")], LOAD_CPUS) as upstream,
    ):
        config = proc.llmrouter_config(
            Path(scratch) / "llmrouter.json", upstream.port, {"max_concurrency": SLOTS}
        )
        settings = json.loads(config.read_text())
        settings["limits"]["max_tokens_cap"] = STALLED_TOKENS
        config.write_text(json.dumps(settings))
        for name, stalled in SCENARIOS.items():
            args.arriving = name == "arriving_as_they_start"
            with proc.llmrouter(config, GATEWAY_CPUS) as router:  # a fresh server each
                args.pids = {"router": router.pid, "upstream": upstream.pid}
                count = args.stalled if stalled < 0 else stalled
                results[name] = asyncio.run(_scenario(router.port, args, stalled=count))
    alone = results["alone"]["ttft"]["median_ms"]
    stalled = results["with_stalled_readers"]
    results["first_call_ratio"] = round(stalled["first_ttft_ms"] / alone, 2)
    results["ttft_ratio"] = round(stalled["ttft"]["median_ms"] / alone, 2)
    print(json.dumps(results), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
