"""What a fallback costs the client: the gap in the token stream at a failover.

One router in this process, two OpenAI-compatible upstreams on loopback
sockets (the fault upstream of the routing tests) streaming tokens as fast
as their sockets take them. For each scenario, ``--runs`` generations of
``--tokens`` tokens are read through the generated stub, and the time
between consecutive chunk events is recorded:

* healthy: a route with one healthy target; the typical gap between chunks.
* drop mid-stream: the first target closes its connection after half the
  tokens; the gap at the failover (the first chunk after ``fallback_used``)
  is the cost of noticing the drop, opening the second target's connection
  and sending the continuation.
* stall mid-stream: the first target goes silent after half the tokens, with
  ``idle_timeout_seconds`` at 0.2; the gap includes that timeout.
* 503 before the first token: time to first token with one failed attempt.

Usage: ``python bench/failover.py [--runs 20] [--tokens 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import loopback_config, serving, start  # noqa: E402
from tests.routing.faults import OK, Fault, FaultUpstream, drop_after, stall_after, status  # noqa: E402

IDLE_TIMEOUT = 0.2


async def _run(fault: Fault, tokens: int, runs: int, fallback: bool) -> tuple[list[float], float]:
    """Per run: the failover gap (or the median gap); and the median time to first token."""
    a, b = FaultUpstream(tokens, fault), FaultUpstream(tokens, OK)
    await a.start()
    await b.start()
    targets = [{"backend": "a", "model": "m"}] + (
        [{"backend": "b", "model": "m"}] if fallback else []
    )
    config = loopback_config(
        # Circuits that never open: every run pays for its failed attempt.
        backends={name: {"kind": "openai", "base_url": u.base_url, "api_key_env": None,
                         "circuit_breaker": {"failure_threshold": 1_000_000}}
                  for name, u in (("a", a), ("b", b))},
        routes={"r": {"targets": targets, "idle_timeout_seconds": IDLE_TIMEOUT,
                      "first_token_timeout_seconds": 5}},
        default_route="r",
        limits={"max_tokens_cap": tokens * 2, "default_max_tokens": tokens * 2},
    )  # fmt: skip
    gaps: list[float] = []
    ttfts: list[float] = []
    try:
        async with serving(config) as served:
            for _ in range(runs):
                gap, ttft = await _one(served.stub, tokens)
                gaps.append(gap)
                ttfts.append(ttft)
    finally:
        await a.stop()
        await b.stop()
    return gaps, statistics.median(ttfts)


async def _one(stub: Any, tokens: int) -> tuple[float, float]:
    began = time.perf_counter()
    last = began
    first: float | None = None
    gaps: list[float] = []
    failover_gap: float | None = None
    after_fallback = False
    request = start("x", sampling={"max_tokens": tokens})
    async for response in stub.Generate(iter([request])):
        event = response.event
        now = time.perf_counter()
        kind = event.WhichOneof("kind")
        if kind == "fallback_used":
            after_fallback = True
        if kind != "chunk":
            continue
        if first is None:
            first = now
        elif after_fallback and failover_gap is None:
            failover_gap = now - last
        else:
            gaps.append(now - last)
        last = now
    assert first is not None
    gap = failover_gap if failover_gap is not None else statistics.median(gaps)
    return gap, first - began


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # the routing's warnings are expected here
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=200)
    args = parser.parse_args()
    half = args.tokens // 2
    scenarios = {
        "healthy (median gap between chunks)": (OK, False),
        f"drop after {half} tokens (gap at the failover)": (drop_after(half), True),
        f"stall after {half} tokens, idle timeout {IDLE_TIMEOUT:g} s": (stall_after(half), True),
        "503 before the first token (gap: median)": (status(503), True),
    }
    print(f"{args.runs} runs of {args.tokens} tokens each")
    print(f"{'scenario':55} {'gap p50':>10} {'gap max':>10} {'TTFT p50':>10}")
    for name, (fault, fallback) in scenarios.items():
        gaps, ttft = await _run(fault, args.tokens, args.runs, fallback)
        print(f"{name:55} {_ms(statistics.median(gaps)):>10} {_ms(max(gaps)):>10} {_ms(ttft):>10}")


if __name__ == "__main__":
    asyncio.run(main())
