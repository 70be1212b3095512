"""Server memory per stalled stream, and what the receive buffer costs a flowing one.

Memory: ``llmrouter serve`` runs in a subprocess with one OpenAI-compatible
backend, an SSE server in this process that streams tokens as fast as its
sockets take them. For each scenario a fresh server gets N client connections
(one channel each); its RSS is read once they are idle, then again after a
Generate call on each connection has read its first event and stopped reading,
and production has stopped everywhere. The difference over N is the cost of one
stalled stream. The kernel's TCP memory (``/proc/net/sockstat``, both ends of
every loopback connection) is reported the same way: it is not in the RSS.

Scenarios differ in the client (CREDIT flow with one credit, the exact bound;
AUTO flow on a channel with a small fixed HTTP/2 window), in the backend's
``receive_buffer_bytes`` (0, the default, keeps the system's buffer while a
response is read and shrinks the window of a connection nobody reads; 4096 was
the old default, fixed for the connection's life), and in when the server lets
a stalled generation keep its upstream connection: as long as nobody waits for
the backend (``max_concurrency`` N), after ``release_after_seconds`` (2 s), or
at once when other generations wait (``max_concurrency`` N/4: the stalled
ones hold the slots, then give them to the waiters, which stall in turn). AUTO
flow on a default channel is left out: grpcio's BDP probing keeps growing that
channel's window, so production does not stop within the window.

Flowing: one stream of ``--tokens`` tokens from ``bench/upstream.py`` (its own
process, as fast as the socket takes them), read as fast as it comes, for each
receive buffer; tokens per second end to end, and the server's CPU per token.

Writes ``bench/results/stalled_streams.json``.

Usage: ``python bench/stalled_streams.py [--streams 200] [--tokens 100000] [--only TEXT]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import grpc
import psutil
from llmrouter.v1 import service_pb2_grpc as svc_grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import processes as proc  # noqa: E402
from upstream import expected_text  # noqa: E402

from tests.backends.upstream import SSEUpstream  # noqa: E402
from tests.helpers import TIGHT_CHANNEL, stable, start  # noqa: E402
from tests.serve_process import llmrouter_process  # noqa: E402

TOKENS = 1_000_000
CREDIT = {"mode": "FLOW_MODE_CREDIT", "initial_credits": 1}
RELEASE_AFTER = 2.0
OLD_BUFFER = 4096
"""``receive_buffer_bytes``' old default."""
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]
"""Without it, grpcio shares one connection among channels with the same options."""


@dataclass(frozen=True)
class Scenario:
    """One way of stalling: the client's channel and flow, the server's backend."""

    options: list[tuple[str, Any]]
    flow: dict[str, Any]
    backend: dict[str, Any] = field(default_factory=dict)
    release_after: float = 600.0
    slots_share: int = 1
    """The backend's ``max_concurrency`` is the stream count divided by this."""


SCENARIOS = {
    "CREDIT flow, 1 credit": Scenario([], CREDIT),
    "AUTO flow, 1 KiB HTTP/2 window": Scenario(TIGHT_CHANNEL, {}),
    f"CREDIT flow, {OLD_BUFFER} B receive buffer": Scenario(
        [], CREDIT, {"receive_buffer_bytes": OLD_BUFFER}
    ),
    f"AUTO flow, {OLD_BUFFER} B receive buffer": Scenario(
        TIGHT_CHANNEL, {}, {"receive_buffer_bytes": OLD_BUFFER}
    ),
    f"CREDIT flow, backend released after {RELEASE_AFTER:g} s": Scenario(
        [], CREDIT, release_after=RELEASE_AFTER
    ),
    "CREDIT flow, 4x more streams than slots": Scenario([], CREDIT, slots_share=4),
}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=100_000, help="of the flowing stream")
    parser.add_argument(
        "--only", help="the scenarios whose name contains this (flowing: only that part)"
    )
    args = parser.parse_args()
    upstream = SSEUpstream(TOKENS)
    base_url = await upstream.start()
    results: dict[str, Any] = {"streams": args.streams, "stalled": {}, "flowing": {}}
    out = Path(__file__).with_name("results") / "stalled_streams.json"
    out.parent.mkdir(exist_ok=True)
    for name, scenario in SCENARIOS.items():
        if args.only and args.only not in name:
            continue
        row = await _run(base_url, upstream, args.streams, scenario)
        results["stalled"][name] = row
        out.write_text(json.dumps(results, indent=2) + "\n")  # what is measured so far
        print(
            f"{name:44} idle {row['idle_rss_mib']:6.1f} MiB  "
            f"stalled {row['stalled_rss_mib']:6.1f} MiB  "
            f"per stalled stream {row['kib_per_stream']:6.1f} KiB "
            f"(kernel TCP, both ends: {row['kernel_tcp_kib_per_stream']:6.1f} KiB)",
            flush=True,
        )
    await upstream.stop()
    if not args.only or args.only == "flowing":
        with proc.server([proc.PYTHON, str(proc.BENCH / "upstream.py")], proc.LOAD_CPUS) as fast:
            for size in (0, OLD_BUFFER):
                rate = await _flowing(fast.port, size, args.tokens)
                results["flowing"][f"receive_buffer_bytes {size}"] = rate
                out.write_text(json.dumps(results, indent=2) + "\n")
                print(f"one flowing stream, receive_buffer_bytes {size:5}: "
                      f"{rate['tokens_per_second']:8.0f} tokens/s, server CPU "
                      f"{rate['server_cpu_us_per_token']:5.1f} us/token", flush=True)  # fmt: skip


async def _run(
    base_url: str, upstream: SSEUpstream, streams: int, scenario: Scenario
) -> dict[str, float]:
    slots = max(streams // scenario.slots_share, 1)
    config = _config(base_url, slots, scenario)
    with config, llmrouter_process(LLMROUTER_CONFIG=config.name) as (address, pid):
        process = psutil.Process(pid)
        options = [*scenario.options, *OWN_CONNECTION]
        channels = [grpc.aio.insecure_channel(address, options=options) for _ in range(streams)]
        await asyncio.gather(*(channel.channel_ready() for channel in channels))
        idle = await _settled_rss(process)
        idle_kernel = _kernel_tcp_bytes()
        calls = []
        for channel in channels:
            request = start(flow=scenario.flow, sampling={"max_tokens": TOKENS})
            call = svc_grpc.RouterServiceStub(channel).Generate(iter([request]))
            await call.read()
            calls.append(call)
        await stable(lambda: upstream.sent, quiet=1.0, seconds=600)
        if scenario.release_after < 60:
            await asyncio.sleep(scenario.release_after + 1.0)
        stalled = await _settled_rss(process)
        stalled_kernel = _kernel_tcp_bytes()
        for call in calls:
            call.cancel()
        await asyncio.sleep(1.0)  # let the server see every cancel before connections close
        await asyncio.gather(*(channel.close() for channel in channels))
    return {
        "idle_rss_mib": idle / 2**20,
        "stalled_rss_mib": stalled / 2**20,
        "kib_per_stream": (stalled - idle) / streams / 1024,
        "kernel_tcp_kib_per_stream": (stalled_kernel - idle_kernel) / streams / 1024,
    }


async def _flowing(port: int, receive_buffer: int, tokens: int) -> dict[str, float]:
    """One fast stream through a fresh server; its tokens per second."""
    with tempfile.TemporaryDirectory() as scratch:
        config = proc.llmrouter_config(
            Path(scratch) / "llmrouter.json", port, {"receive_buffer_bytes": receive_buffer}
        )
        settings = json.loads(config.read_text())
        settings["limits"]["max_tokens_cap"] = tokens
        config.write_text(json.dumps(settings))
        with proc.llmrouter(config, proc.GATEWAY_CPUS) as router:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{router.port}") as channel:
                stub = svc_grpc.RouterServiceStub(channel)
                await _read_all(stub, 1000)  # warm up
                cpu = proc.cpu_seconds(router.pid)
                began = time.perf_counter()
                await _read_all(stub, tokens)
                seconds = time.perf_counter() - began
                cpu = proc.cpu_seconds(router.pid) - cpu
    return {
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_second": tokens / seconds,
        "server_cpu_us_per_token": 1e6 * cpu / tokens,
    }


async def _read_all(stub: svc_grpc.RouterServiceStub, tokens: int) -> None:
    request = start(model="fast", sampling={"max_tokens": tokens})
    parts = [r.event.chunk.text async for r in stub.Generate(iter([request]))]
    if "".join(parts) != expected_text(tokens):
        raise RuntimeError("the flowing stream's text differs from what the upstream sent")


def _config(base_url: str, slots: int, scenario: Scenario) -> IO[str]:
    """A configuration file (JSON is YAML) with one upstream; host and port come from
    the environment."""
    config = {
        "streams": {"release_after_seconds": scenario.release_after},
        "limits": {"max_tokens_cap": TOKENS, "max_calls_per_connection": 1000},
        "backends": {
            "up": {
                "kind": "openai",
                "base_url": base_url,
                "api_key_env": None,
                "max_concurrency": slots,
                "max_queued": 4096,
                **scenario.backend,
            }
        },
        "routes": {"up-model": {"targets": [{"backend": "up", "model": "m"}]}},
        "default_route": "up-model",
    }
    file = tempfile.NamedTemporaryFile("w", suffix=".yaml")  # noqa: SIM115 - closed by _run
    json.dump(config, file)
    file.flush()
    return file


def _kernel_tcp_bytes() -> int:
    """The kernel's memory for TCP buffers, all sockets (``/proc/net/sockstat``, pages)."""
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            fields = line.split()
            return int(fields[fields.index("mem") + 1]) * 4096
    return 0


async def _settled_rss(process: psutil.Process) -> int:
    return await stable(lambda: process.memory_info().rss, quiet=1.0, seconds=600)


if __name__ == "__main__":
    asyncio.run(main())
