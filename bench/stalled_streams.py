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
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psutil
from llmrouter.v1 import service_pb2_grpc as svc_grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.backends.upstream import SSEUpstream, free_port  # noqa: E402
from tests.helpers import TIGHT_CHANNEL, start  # noqa: E402

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
    flow, release_after = scenario.flow, scenario.release_after
    with _Server(base_url, streams, release_after) as (address, process):
        channels = [
            grpc.aio.insecure_channel(address, options=scenario.options) for _ in range(streams)
        ]
        await asyncio.gather(*(channel.channel_ready() for channel in channels))
        idle = await _settled_rss(process)
        calls = []
        for channel in channels:
            stub = svc_grpc.RouterServiceStub(channel)
            request = (
                start(flow=flow, sampling={"max_tokens": TOKENS})
                if flow
                else start(sampling={"max_tokens": TOKENS})
            )
            call = stub.Generate(iter([request]))
            await call.read()
            calls.append(call)
        await _stable(lambda: upstream.sent)
        await asyncio.sleep(min(release_after, 60.0) + 1.0 if release_after < 60 else 0)
        stalled = await _settled_rss(process)
        for call in calls:
            call.cancel()
        await asyncio.sleep(1.0)  # let the server see every cancel before connections close
        await asyncio.gather(*(channel.close() for channel in channels))
    return idle, stalled


class _Server:
    def __init__(self, base_url: str, streams: int, release_after: float) -> None:
        self._config = {
            "server": {"host": "127.0.0.1", "port": free_port()},
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

    def __enter__(self) -> tuple[str, psutil.Process]:
        self._file = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        json.dump(self._config, self._file)  # JSON is YAML
        self._file.close()
        command = [
            str(Path(sys.executable).with_name("llmrouter")),
            "serve",
            "--log-level",
            "WARNING",
        ]
        self._process = subprocess.Popen([*command, "--config", self._file.name])
        address = f"127.0.0.1:{self._config['server']['port']}"
        deadline = time.monotonic() + 60
        while subprocess.run(
            [command[0], "health", "--address", address], capture_output=True, check=False
        ).returncode:
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError("llmrouter serve did not start")
            time.sleep(0.2)
        return address, psutil.Process(self._process.pid)

    def __exit__(self, *exc: object) -> None:
        self._process.send_signal(signal.SIGTERM)
        self._process.wait(30)
        os.unlink(self._file.name)


async def _stable(read: Any, quiet: float = 1.0) -> int:
    value = read()
    while True:
        await asyncio.sleep(quiet)
        if read() == value:
            return int(value)
        value = read()


async def _settled_rss(process: psutil.Process) -> int:
    return await _stable(lambda: process.memory_info().rss, quiet=1.0)


if __name__ == "__main__":
    asyncio.run(main())
