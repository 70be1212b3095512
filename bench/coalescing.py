"""What ADAPTIVE coalescing saves: events sent and relay throughput, against TOKEN.

One router in this process, one OpenAI-compatible upstream on a loopback
socket (the fault upstream of the routing tests, healthy) streaming tokens as
fast as its socket takes them. Two scenarios, each run with TOKEN and with
ADAPTIVE coalescing:

* fast readers: ``--streams`` concurrent generations of ``--tokens`` tokens,
  each read as fast as the client can; relay throughput is the tokens of all
  streams over the wall time until the last one completes.
* slow reader: one generation of ``--slow-tokens`` tokens read by a CREDIT
  caller that takes one event, waits 1/``--rate`` s, then grants one more.

Text and token counts are checked to be the same in both modes.

Usage: ``python bench/coalescing.py [--streams 50] [--tokens 200] [--slow-tokens 100]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmrouter.v1 import service_pb2 as svc_pb  # noqa: E402

from tests.helpers import loopback_config, serving, start  # noqa: E402
from tests.routing.faults import OK, FaultUpstream  # noqa: E402


@dataclass
class Result:
    """What one scenario in one mode sent."""

    seconds: float
    tokens: int
    events: int
    chunks: int
    texts: list[str]


def _options(mode: str) -> dict[str, Any]:
    return {"coalescing": {"mode": f"COALESCE_MODE_{mode}"}}


async def _fast(stub: Any, mode: str, tokens: int) -> tuple[int, int, int, str]:
    """One generation read as fast as possible: events, chunks, tokens, text."""
    events = chunks = counted = 0
    text: list[str] = []
    request = start("x", stream_options=_options(mode), sampling={"max_tokens": tokens})
    async for response in stub.Generate(iter([request])):
        events += 1
        if response.event.HasField("chunk"):
            chunks += 1
            counted += response.event.chunk.token_count
            text.append(response.event.chunk.text)
    return events, chunks, counted, "".join(text)


async def _slow(stub: Any, mode: str, tokens: int, rate: float) -> tuple[int, int, int, str]:
    """One generation read by a CREDIT caller taking ``rate`` events per second."""
    call = stub.Generate()
    flow = {"mode": "FLOW_MODE_CREDIT", "initial_credits": 1}
    await call.write(
        start("x", stream_options=_options(mode), flow=flow, sampling={"max_tokens": tokens})
    )
    events = chunks = counted = 0
    text: list[str] = []
    while True:
        response = await call.read()
        events += 1
        event = response.event
        if event.HasField("chunk"):
            chunks += 1
            counted += event.chunk.token_count
            text.append(event.chunk.text)
        if event.HasField("completed"):
            break
        await asyncio.sleep(1 / rate)
        await call.write(svc_pb.GenerateRequest(grant={"credits": 1}))
    await call.done_writing()
    return events, chunks, counted, "".join(text)


async def _scenario(
    stub: Any, upstream: FaultUpstream, mode: str, args: argparse.Namespace, slow: bool
) -> Result:
    upstream.tokens = args.slow_tokens if slow else args.tokens
    began = time.perf_counter()
    if slow:
        runs = [await _slow(stub, mode, args.slow_tokens, args.rate)]
    else:
        runs = await asyncio.gather(*(_fast(stub, mode, args.tokens) for _ in range(args.streams)))
    seconds = time.perf_counter() - began
    return Result(
        seconds=seconds,
        events=sum(r[0] for r in runs),
        chunks=sum(r[1] for r in runs),
        tokens=sum(r[2] for r in runs),
        texts=[r[3] for r in runs],
    )


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--slow-tokens", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0, help="slow reader: events/s")
    args = parser.parse_args()
    most = max(args.tokens, args.slow_tokens)
    upstream = FaultUpstream(most, OK)
    await upstream.start()
    config = loopback_config(
        backends={"up": {"kind": "openai", "base_url": upstream.base_url, "api_key_env": None,
                         "max_concurrency": max(64, args.streams)}},
        routes={"r": {"targets": [{"backend": "up", "model": "m"}]}},
        default_route="r",
        limits={"max_tokens_cap": most, "default_max_tokens": most},
    )  # fmt: skip
    scenarios = {
        f"{args.streams} fast readers x {args.tokens} tokens": False,
        f"1 reader at {args.rate:g} events/s x {args.slow_tokens} tokens": True,
    }
    print(
        f"{'scenario':42} {'mode':9} {'tokens/s':>10} {'events':>8} {'chunks':>8}"
        f" {'tok/chunk':>9} {'seconds':>8}"
    )
    try:
        async with serving(config) as served:
            for name, slow in scenarios.items():
                results = {
                    m: await _scenario(served.stub, upstream, m, args, slow)
                    for m in ("TOKEN", "ADAPTIVE")
                }
                token, adaptive = results["TOKEN"], results["ADAPTIVE"]
                assert sorted(token.texts) == sorted(adaptive.texts), "text differs"
                assert token.tokens == adaptive.tokens, "token counts differ"
                for mode, r in results.items():
                    print(
                        f"{name:42} {mode:9} {r.tokens / r.seconds:>10.0f} {r.events:>8}"
                        f" {r.chunks:>8} {r.tokens / max(r.chunks, 1):>9.1f} {r.seconds:>8.2f}"
                    )
    finally:
        await upstream.stop()


if __name__ == "__main__":
    asyncio.run(main())
