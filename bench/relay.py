"""Relay throughput and CPU per token: llmrouter, the bare grpc.aio ceiling and peers.

One fast upstream (``bench/upstream.py``) and the load clients share one
core; the gateway under test runs alone on the other. For each gateway and
concurrency, that many workers run 200-token streams back to back for
``--seconds`` (each at least one stream); the gateway's CPU time (its process
and children) over the tokens delivered is its CPU per relayed token, and
tokens over the wall time from the first request to the last end is its
throughput. ``direct`` is the upstream without a gateway; ``bare`` is
``bench/bare.py`` (no upstream); ``llmrouter`` asks for one event per token
(TOKEN), ``llmrouter-adaptive`` for ADAPTIVE coalescing, ``llmrouter-ws`` and
``llmrouter-ws-adaptive`` the same through the WebSocket gateway (a browser's path); ``litellm``,
``portkey`` and ``smg`` are the peers ``bench/peers.py`` starts (installed by
``bench/install_peers.sh``; a peer not installed is skipped and said so; a
peer runs a concurrency above 20 only when its last rate gets one stream per
worker through in 8 s).
Every HTTP gateway is read with the same client (httpx), llmrouter and bare
with the generated Python gRPC client, as the performance issue measured.

Usage: ``python bench/relay.py [--gateways direct,bare,llmrouter,...] [--concurrency 1,20,50,500]
[--peer-concurrency 1,20,50] [--seconds 4]``; writes ``bench/results/relay.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import processes as proc
from processes import BENCH, GATEWAY_CPUS, LOAD_CPUS, PYTHON

TOKENS = 200
PEERS = ("litellm", "portkey", "smg")
CHEAP_SECONDS = 8.0
"""A peer runs a higher concurrency only when one stream per worker takes at most this."""
LOAD_PROCESSES = 2
"""Load processes (Python) sharing the load core; a batch is split between them."""


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
        with proc.llmrouter(config, gateway=name.startswith("llmrouter-ws")) as router:
            if name.startswith("llmrouter-ws"):
                yield {"kind": "ws", "target": f"ws://127.0.0.1:{router.gateway_port}/v1/ws",
                       "pid": router.pid, "coalescing": coalescing}  # fmt: skip
            else:
                yield {"kind": "grpc", "target": f"127.0.0.1:{router.port}", "pid": router.pid,
                       "coalescing": coalescing}  # fmt: skip
    else:
        import peers

        with peers.peer(name, f"http://127.0.0.1:{upstream}/v1", GATEWAY_CPUS) as peer:
            yield {"kind": "http", "target": peer.base_url, "pid": peer.pid,
                   "header": [f"{k}={v}" for k, v in peer.headers.items()],
                   "model": peer.model, "version": peer.version}  # fmt: skip


def measure(how: dict[str, Any], pool: proc.Loaders, concurrency: int, seconds: float) -> dict:
    """One run at ``concurrency``; throughput, TTFT and the gateway's CPU per token."""
    pid = how["pid"]
    before = proc.cpu_seconds(pid) if pid else 0.0
    options = {key: how[key] for key in ("model", "coalescing", "header") if key in how}
    cores = proc.Cores().start()
    run = pool.run(how["kind"], how["target"], concurrency=concurrency, tokens=TOKENS,
                   duration=seconds, deadline=300.0, **options)  # fmt: skip
    cores.stop()
    cpu = (proc.cpu_seconds(pid) - before) if pid else 0.0
    streams = run.streams
    tokens = sum(s["tokens"] for s in streams)
    events = sum(s["events"] for s in streams)
    begin = min(s["start"] for s in streams)
    wall = max(s["start"] + s["end"] for s in streams) - begin
    return {
        "concurrency": concurrency,
        "streams": len(streams),
        "tokens": tokens,
        "events": events,
        "seconds": wall,
        "tokens_per_second": tokens / wall,
        "events_per_second": events / wall,
        "ttft_p50_ms": 1000 * statistics.median(s["ttft"] or 0.0 for s in streams),
        "cpu_seconds": cpu,
        "cpu_us_per_token": 1e6 * cpu / tokens if pid and tokens else None,
        "client_cpu_us_per_event": 1e6 * run.client_cpu_seconds / events if events else None,
        "core_busy": cores.busy,
        "errors": len(run.errors),
        "first_error": run.errors[0] if run.errors else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = ",".join(["direct", "bare", "llmrouter", "llmrouter-adaptive", *PEERS])
    parser.add_argument("--gateways", default=default)
    parser.add_argument("--concurrency", default="1,20,50,500")
    parser.add_argument("--peer-concurrency", default="1,20,50", help="for peers and direct")
    parser.add_argument("--seconds", type=float, default=4.0, help="per run, at least a stream")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "relay.json")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "tokens_per_stream": TOKENS, "seconds": args.seconds, "machine": proc.machine_state(),
        "gateways": {}, "skipped": {},
    }  # fmt: skip
    with (
        tempfile.TemporaryDirectory() as scratch,
        proc.server([PYTHON, str(BENCH / "upstream.py")], LOAD_CPUS) as upstream,
    ):
        for name in args.gateways.split(","):
            levels = args.peer_concurrency if name in (*PEERS, "direct") else args.concurrency
            try:
                results["gateways"][name] = run_gateway(name, upstream.port, Path(scratch),
                                                        levels, args.seconds)  # fmt: skip
            except (RuntimeError, ValueError, OSError) as error:
                results["skipped"][name] = str(error).splitlines()[0][:300]
                print(f"{name:20} skipped: {results['skipped'][name]}", flush=True)
    results["machine_after"] = proc.machine_state()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))


def cheap(last: dict[str, Any], level: int) -> bool:
    """Whether ``level`` streams of a peer take at most ``CHEAP_SECONDS`` at its last rate."""
    return level * TOKENS <= last["tokens_per_second"] * CHEAP_SECONDS


def run_gateway(name: str, upstream: int, scratch: Path, levels: str, seconds: float) -> dict:
    """Every level of one gateway, with one warm-up first."""
    rows = []
    with gateway(name, upstream, scratch) as how, proc.loaders(LOAD_PROCESSES) as pool:
        measure(how, pool, 20, 0.0)  # warm up: connections, caches, lazy imports
        for level in (int(c) for c in levels.split(",")):
            if name in PEERS and rows and not cheap(rows[-1], level):
                print(f"{name:20} x{level:<4} skipped: one stream each would take over "
                      f"{CHEAP_SECONDS:g} s at its last rate", flush=True)  # fmt: skip
                continue
            time.sleep(0.5)
            row = measure(how, pool, level, seconds)
            rows.append(row)
            cpu = row["cpu_us_per_token"]
            print(f"{name:20} x{level:<4} {row['tokens_per_second']:9.0f} tok/s  "
                  f"ttft p50 {row['ttft_p50_ms']:7.1f} ms  "
                  f"cpu/token {cpu if cpu is None else round(cpu, 1)} us  "
                  f"errors {row['errors']} {row['first_error'][:60]}", flush=True)  # fmt: skip
    return {"version": how.get("version"), "rows": rows}


if __name__ == "__main__":
    main()
