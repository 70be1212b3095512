"""Processes of a benchmark: servers pinned to cores, load clients, CPU time.

Every server listens on loopback and is stopped when its ``with`` block ends
(SIGTERM, then SIGKILL); its output goes to a temporary file, never to a pipe
nobody reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
LLMROUTER = str(Path(PYTHON).with_name("llmrouter"))

GATEWAY_CPUS = {0}
"""The core a gateway under test runs on."""
LOAD_CPUS = {1}
"""The core the upstream and the load clients share."""


@dataclass
class Server:
    """A started server process."""

    process: subprocess.Popen[str]
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.contextmanager
def server(
    command: Sequence[str],
    cpus: set[int] | None = None,
    env: dict[str, str] | None = None,
    ready: str = "listening",
) -> Iterator[Server]:
    """Runs ``command`` until it prints ``ready PORT``; stops it afterwards."""
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            list(command), stdout=subprocess.PIPE, stderr=log, text=True,
            env={**os.environ, **(env or {})}, cwd=ROOT,
        )  # fmt: skip
        try:
            if cpus:
                os.sched_setaffinity(process.pid, cpus)
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.startswith(ready):
                log.seek(0)
                raise RuntimeError(f"{command[:3]} did not start: {line!r} {log.read()[-2000:]}")
            yield Server(process, int(line.split()[-1]))
        finally:
            stop(process)


def stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM to a process and its children, SIGKILL after 10 s."""
    with contextlib.suppress(psutil.NoSuchProcess):
        family = [*psutil.Process(process.pid).children(recursive=True)]
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for child in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process and its children so far."""
    process = psutil.Process(pid)
    total = 0.0
    for each in (process, *process.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = each.cpu_times()
            total += times.user + times.system
    return total


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children."""
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in (process, *process.children(recursive=True)))


def load(  # noqa: PLR0913 - one load run is all of these
    kind: str,
    target: str,
    *,
    concurrency: int,
    per_worker: int = 1,
    tokens: int = 200,
    model: str = "fast",
    coalescing: str = "token",
    headers: dict[str, str] | None = None,
    processes: int = 1,
    gaps: bool = False,
) -> list[dict[str, Any]]:
    """Runs ``bench/load.py`` in ``processes`` processes starting together; their streams."""
    start_at = time.time() + 1.0 + 0.2 * processes
    shares = [concurrency // processes + (i < concurrency % processes) for i in range(processes)]
    running = []
    for share in shares:
        command = [
            PYTHON, str(BENCH / "load.py"), "--kind", kind, "--target", target,
            "--concurrency", str(share), "--per-worker", str(per_worker), "--tokens", str(tokens),
            "--model", model, "--coalescing", coalescing, "--start-at", str(start_at),
            *(["--gaps"] if gaps else []),
            *(arg for pair in (headers or {}).items() for arg in ("--header", "=".join(pair))),
        ]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        os.sched_setaffinity(process.pid, LOAD_CPUS)
        running.append(process)
    streams: list[dict[str, Any]] = []
    for process in running:
        out, _ = process.communicate(timeout=900)
        streams += json.loads(out)["streams"]
    return streams


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, interpolated."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1]


def llmrouter_config(
    path: Path, upstream_port: int, backend_options: dict[str, Any] | None = None, **streams: Any
) -> Path:
    """Writes a configuration routing ``fast`` and ``paced-N`` to the benchmark upstream."""
    backend = {"kind": "openai", "base_url": f"http://127.0.0.1:{upstream_port}/v1",
               "api_key_env": None, "max_concurrency": 4096, "max_queued": 4096,
               **(backend_options or {})}  # fmt: skip
    routes = {name: {"targets": [{"backend": "upstream", "model": name}]}
              for name in ("fast", "paced-10", "paced-100")}  # fmt: skip
    config = {
        "backends": {"upstream": backend}, "routes": routes, "default_route": "fast",
        "limits": {"max_calls_per_connection": 1000}, "streams": streams,
    }  # fmt: skip
    path.write_text(json.dumps(config))
    return path


@contextlib.contextmanager
def llmrouter(config: Path, cpus: set[int] | None = GATEWAY_CPUS) -> Iterator[Server]:
    """``llmrouter serve`` with ``config`` on a free loopback port, pinned to ``cpus``."""
    port = _free_port()
    env = {"LLMROUTER_CONFIG": str(config), "LLMROUTER_SERVER__PORT": str(port),
           "LLMROUTER_SERVER__HOST": "127.0.0.1"}  # fmt: skip
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            [LLMROUTER, "serve"], stderr=log, stdout=log, text=True, cwd=ROOT,
            env={**os.environ, **env},
        )  # fmt: skip
        try:
            if cpus:
                os.sched_setaffinity(process.pid, cpus)
            _wait_healthy(f"127.0.0.1:{port}", process, log)
            yield Server(process, port)
        finally:
            stop(process)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(address: str, process: subprocess.Popen[str], log: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"llmrouter serve exited: {log.read()[-2000:]}")
        probe = subprocess.run(
            [LLMROUTER, "health", "--address", address], capture_output=True, check=False
        )
        if probe.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("llmrouter serve did not become healthy in 60 s")
