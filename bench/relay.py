"""Relay throughput and CPU per token: llmrouter, the bare grpc.aio ceiling and peers.

One fast upstream (``bench/upstream.py``) and the load clients share one
core; the gateway under test runs alone on the other. For each gateway and
concurrency, ``concurrency`` workers each run streams of 200 tokens back to
back; the gateway's CPU time (its process and children) over the tokens
delivered is its CPU per relayed token, and tokens over the wall time from
the first request to the last end is its throughput. ``direct`` is the
upstream without a gateway; ``bare`` is ``bench/bare.py`` (no upstream).

Usage: ``python bench/relay.py [--quick] [--out bench/results/relay.json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import processes as proc
from processes import BENCH, GATEWAY_CPUS, LOAD_CPUS, PYTHON

TOKENS = 200


@contextlib.contextmanager
def gateway(name: str, upstream: int, scratch: Path) -> Iterator[dict[str, Any]]:
    """Starts gateway ``name`` relaying the upstream on port ``upstream``; how to load it."""
    if name == "direct":
        yield {"kind": "http", "target": f"http://127.0.0.1:{upstream}/v1", "pid": None}
    elif name == "bare":
        with proc.server([PYTHON, str(BENCH / "bare.py")], GATEWAY_CPUS) as bare:
            yield {"kind": "grpc", "target": f"127.0.0.1:{bare.port}", "pid": bare.pid}
    elif name.startswith("llmrouter"):
        options = json.loads(os.environ.get("LLMROUTER_BENCH_BACKEND", "{}"))
        config = proc.llmrouter_config(scratch / "llmrouter.json", upstream, options)
        coalescing = "adaptive" if name.endswith("adaptive") else "token"
        with proc.llmrouter(config) as router:
            yield {"kind": "grpc", "target": f"127.0.0.1:{router.port}", "pid": router.pid,
                   "coalescing": coalescing}  # fmt: skip
    else:
        import peers

        with peers.peer(name, f"http://127.0.0.1:{upstream}/v1", GATEWAY_CPUS) as peer:
            yield {"kind": "http", "target": peer.base_url, "pid": peer.pid,
                   "headers": peer.headers, "model": peer.model}  # fmt: skip


def measure(
    how: dict[str, Any], concurrency: int, per_worker: int, processes: int
) -> dict[str, Any]:
    """One run at ``concurrency``; throughput, TTFT and the gateway's CPU per token."""
    pid = how["pid"]
    before = proc.cpu_seconds(pid) if pid else 0.0
    streams = proc.load(
        how["kind"], how["target"], concurrency=concurrency, per_worker=per_worker,
        tokens=TOKENS, model=how.get("model", "fast"), coalescing=how.get("coalescing", "token"),
        headers=how.get("headers"), processes=processes,
    )  # fmt: skip
    cpu = (proc.cpu_seconds(pid) - before) if pid else 0.0
    tokens = sum(s["tokens"] for s in streams)
    begin = min(s["start"] for s in streams)
    end = max(s["start"] + s["end"] for s in streams)
    errors = [s["error"] for s in streams if s["error"]]
    return {
        "concurrency": concurrency,
        "streams": len(streams),
        "tokens": tokens,
        "events": sum(s["events"] for s in streams),
        "seconds": end - begin,
        "tokens_per_second": tokens / (end - begin),
        "events_per_second": sum(s["events"] for s in streams) / (end - begin),
        "ttft_p50_ms": 1000 * statistics.median(s["ttft"] or 0.0 for s in streams),
        "cpu_seconds": cpu,
        "cpu_us_per_token": 1e6 * cpu / tokens if pid and tokens else None,
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
    }


RUNS = {1: (1, 30, 1), 20: (20, 8, 1), 50: (50, 4, 2), 500: (500, 1, 2)}
"""Concurrency: (workers, streams per worker, load processes)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gateways", default="direct,bare,llmrouter,llmrouter-adaptive")
    parser.add_argument("--concurrency", default="1,20")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "relay.json")
    args = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {}
    with (
        tempfile.TemporaryDirectory() as scratch,
        proc.server([PYTHON, str(BENCH / "upstream.py")], LOAD_CPUS) as upstream,
    ):
        for name in args.gateways.split(","):
            with gateway(name, upstream.port, Path(scratch)) as how:
                measure(how, 4, 1, 1)  # warm up: connections, caches
                for level in (int(c) for c in args.concurrency.split(",")):
                    workers, per_worker, processes = RUNS[level]
                    row = measure(how, workers, per_worker, processes)
                    results.setdefault(name, []).append(row)
                    cpu = row["cpu_us_per_token"]
                    print(f"{name:20} x{level:<4} {row['tokens_per_second']:9.0f} tok/s  "
                          f"ttft p50 {row['ttft_p50_ms']:7.1f} ms  "
                          f"cpu/token {cpu if cpu is None else round(cpu, 1)} us  "
                          f"errors {row['errors']} {row['first_error'][:60]}",
                          flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
