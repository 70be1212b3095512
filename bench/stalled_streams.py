"""Server memory per stalled stream: N stalled generations vs N idle connections.

``llmrouter serve`` runs in a subprocess with one OpenAI-compatible backend,
an SSE server in this process that streams tokens as fast as its sockets
take them. For each scenario a fresh server gets N client connections (one
channel each); its RSS is read once they are idle, then again after a
Generate call on each connection has read its first event and stopped
reading, and production has stopped everywhere. The difference over N is
the cost of one stalled stream.

Scenarios differ in the client (CREDIT flow with one credit, the exact
bound; AUTO flow on a channel with a small fixed HTTP/2 window) and in how
long the server lets a stalled generation keep its upstream connection. AUTO
flow on a default channel is left out: grpcio's BDP probing keeps growing
that channel's window, so production does not stop within the window.

Usage: ``python bench/stalled_streams.py [--streams 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import grpc
import psutil
from llmrouter.v1 import service_pb2_grpc as svc_grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.backends.upstream import SSEUpstream  # noqa: E402
from tests.helpers import TIGHT_CHANNEL, stable, start  # noqa: E402
from tests.serve_process import llmrouter_process  # noqa: E402

TOKENS = 1_000_000
CREDIT = {"mode": "FLOW_MODE_CREDIT", "initial_credits": 1}
RELEASE_AFTER = 2.0


@dataclass(frozen=True)
class Scenario:
    """One way of stalling: the client's channel and flow, the server's release time."""

    options: list[tuple[str, Any]]
    flow: dict[str, Any]
    release_after: float = 600.0


SCENARIOS = {
    "CREDIT flow, 1 credit": Scenario([], CREDIT),
    "AUTO flow, 1 KiB HTTP/2 window": Scenario(TIGHT_CHANNEL, {}),
    f"CREDIT flow, backend released after {RELEASE_AFTER:g} s": Scenario([], CREDIT, RELEASE_AFTER),
}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    args = parser.parse_args()
    upstream = SSEUpstream(TOKENS)
    base_url = await upstream.start()
    results = {}
    for name, scenario in SCENARIOS.items():
        results[name] = await _run(base_url, upstream, args.streams, scenario)
        idle, stalled = results[name]
        extra = (stalled - idle) / args.streams
        print(
            f"{name:32} idle {idle / 2**20:7.1f} MiB  stalled {stalled / 2**20:7.1f} MiB  "
            f"extra per stalled stream {extra / 1024:7.1f} KiB"
        )
    await upstream.stop()
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    (out / "stalled_streams.json").write_text(json.dumps(results, indent=2))


async def _run(
    base_url: str, upstream: SSEUpstream, streams: int, scenario: Scenario
) -> tuple[int, int]:
    config = _config(base_url, streams, scenario.release_after)
    with config, llmrouter_process(LLMROUTER_CONFIG=config.name) as (address, pid):
        process = psutil.Process(pid)
        channels = [
            grpc.aio.insecure_channel(address, options=scenario.options) for _ in range(streams)
        ]
        await asyncio.gather(*(channel.channel_ready() for channel in channels))
        idle = await _settled_rss(process)
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
        for call in calls:
            call.cancel()
        await asyncio.sleep(1.0)  # let the server see every cancel before connections close
        await asyncio.gather(*(channel.close() for channel in channels))
    return idle, stalled


def _config(base_url: str, streams: int, release_after: float) -> IO[str]:
    """A configuration file (JSON is YAML) with one upstream; host and port come from
    the environment."""
    config = {
        "streams": {"release_after_seconds": release_after},
        "limits": {"max_tokens_cap": TOKENS},
        "backends": {
            "up": {
                "kind": "openai",
                "base_url": base_url,
                "api_key_env": None,
                "max_concurrency": streams,
            }
        },
        "routes": {"up-model": {"targets": [{"backend": "up", "model": "m"}]}},
        "default_route": "up-model",
    }
    file = tempfile.NamedTemporaryFile("w", suffix=".yaml")  # noqa: SIM115 - closed by _run
    json.dump(config, file)
    file.flush()
    return file


async def _settled_rss(process: psutil.Process) -> int:
    return await stable(lambda: process.memory_info().rss, quiet=1.0, seconds=600)


if __name__ == "__main__":
    asyncio.run(main())
