"""Retention: per-operation cost and memory as finished generations pile up.

``llmrouter serve`` (alone on one core) runs ``--thousands`` x 1,000
start/cancel cycles from ``--concurrency`` clients in this process (on the
other core, with the paced upstream): each cycle starts a generation
(``paced-100``, 1,000 tokens, so the upstream never finishes first), reads its
first event, sends ``cancel`` and reads the call to its end (``--op complete``:
a 20-token ``fast`` generation read to its end instead). After each thousand
it records the wall time, the server's CPU time and its RSS. Configurations,
each on a fresh server:

* ``default``: ``streams.retain_seconds: 300``, ``retain_total_bytes`` 64 MiB;
* ``off``: ``retain_seconds: 0``, nothing kept;
* ``small``: ``retain_total_bytes`` of ``--small-budget`` MiB.

Per-operation cost is independent of retention when the last thousand costs
what the first did (server CPU ms per cycle); retained memory is the RSS of a
configuration minus the RSS of ``off`` after the same number of cycles, to be
set against its ``retain_total_bytes``. Writes ``bench/results/retention.json``.

Usage: ``python bench/retention.py [--thousands 10] [--concurrency 4] [--op cancel|complete]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import processes as proc
from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc
from processes import BENCH, LOAD_CPUS, PYTHON

MIB = 2**20
DEFAULT_BUDGET = 64 * MIB


def configs(small_mib: float) -> dict[str, dict[str, Any]]:
    """Each configuration's ``streams`` section."""
    return {
        "default": {},
        "off": {"retain_seconds": 0},
        "small": {"retain_total_bytes": int(small_mib * MIB)},
    }


async def cycle(stub: Any, op: str) -> None:
    """One start/cancel (or start/complete) cycle."""
    if op == "complete":
        start = gen_pb.StartGeneration(
            prompt="bench", model="fast", sampling=gen_pb.SamplingParams(max_tokens=20)
        )
        async for _ in stub.Generate(iter([svc_pb.GenerateRequest(start=start)])):
            pass
        return
    start = gen_pb.StartGeneration(
        prompt="bench", model="paced-100", sampling=gen_pb.SamplingParams(max_tokens=1000)
    )
    call = stub.Generate()
    await call.write(svc_pb.GenerateRequest(start=start))
    await call.read()
    await call.write(svc_pb.GenerateRequest(cancel=gen_pb.CancelGeneration(reason="bench")))
    await call.done_writing()
    while await call.read() is not grpc.aio.EOF:
        pass


async def thousands(address: str, pid: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The rows, one per thousand cycles."""
    channel = grpc.aio.insecure_channel(address)
    stub = svc_grpc.RouterServiceStub(channel)
    for _ in range(20):  # warm up
        await cycle(stub, args.op)
    rows = []
    errors = 0

    async def client(count: int) -> None:
        nonlocal errors
        for _ in range(count):
            try:
                await cycle(stub, args.op)
            except grpc.aio.AioRpcError:
                errors += 1

    for index in range(args.thousands):
        cpu, began = proc.cpu_seconds(pid), time.perf_counter()
        shares = [
            1000 // args.concurrency + (i < 1000 % args.concurrency)
            for i in range(args.concurrency)
        ]
        await asyncio.gather(*(client(n) for n in shares))
        row = {
            "cycles": (index + 1) * 1000,
            "seconds_per_thousand": time.perf_counter() - began,
            "server_cpu_ms_per_cycle": proc.cpu_seconds(pid) - cpu,
            "rss_bytes": proc.rss_bytes(pid),
            "errors": errors,
        }
        rows.append(row)
        print(
            f"  {row['cycles']:6} cycles  {row['seconds_per_thousand']:6.2f} s/1000  "
            f"cpu {row['server_cpu_ms_per_cycle']:5.2f} ms/cycle  "
            f"rss {row['rss_bytes'] / MIB:7.1f} MiB  errors {errors}",
            flush=True,
        )
    await channel.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thousands", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=4, help="clients cycling at once")
    parser.add_argument("--op", default="cancel", choices=("cancel", "complete"))
    parser.add_argument("--small-budget", type=float, default=4.0, help="MiB, the small run's")
    parser.add_argument("--configs", default="default,off,small")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "retention.json")
    args = parser.parse_args()
    os.sched_setaffinity(0, LOAD_CPUS)
    every = configs(args.small_budget)
    results: dict[str, Any] = {
        "machine": proc.machine_state(),
        "op": args.op,
        "concurrency": args.concurrency,
        "configs": {},
    }
    with (
        tempfile.TemporaryDirectory() as scratch,
        proc.server([PYTHON, str(BENCH / "upstream.py")], LOAD_CPUS) as upstream,
    ):
        for name in args.configs.split(","):
            streams = every[name]
            print(f"{name}: streams {streams}", flush=True)
            path = proc.llmrouter_config(Path(scratch) / f"{name}.json", upstream.port, **streams)
            with proc.llmrouter(path) as router:
                idle = proc.rss_bytes(router.pid)
                rows = asyncio.run(thousands(f"127.0.0.1:{router.port}", router.pid, args))
            budget = streams.get("retain_total_bytes", DEFAULT_BUDGET)
            retained = streams.get("retain_seconds") != 0
            results["configs"][name] = {
                "streams": streams,
                "retain_total_bytes": budget if retained else 0,
                "rss_idle_bytes": idle,
                "rows": rows,
            }
    results["machine_after"] = proc.machine_state()
    for row in results["configs"].values():
        for each in row["rows"]:
            each["server_cpu_ms_per_cycle"] = round(each["server_cpu_ms_per_cycle"], 4)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
