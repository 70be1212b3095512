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
    gateway_port: int | None = None
    """llmrouter's WebSocket gateway, when started with one."""

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


def stop(process: subprocess.Popen[Any], signum: int = signal.SIGTERM, grace: float = 10.0) -> None:
    """``signum`` to a process, SIGKILL after ``grace`` seconds; then SIGKILL to the
    children it had started."""
    with contextlib.suppress(psutil.NoSuchProcess):
        family = [*psutil.Process(process.pid).children(recursive=True)]
        process.send_signal(signum)
        try:
            process.wait(grace)
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


@dataclass
class LoadRun:
    """What the load processes of one batch saw."""

    streams: list[dict[str, Any]]
    """Every stream's timings (``bench/load.py``'s fields)."""
    client_cpu_seconds: float
    """CPU the load processes spent on the batch."""

    @property
    def errors(self) -> list[str]:
        return [s["error"] for s in self.streams if s["error"]]


class Loaders:
    """Load processes (``bench/load.py --serve``) pinned to ``LOAD_CPUS``, kept for
    many batches; each batch is shared among them and starts in all at once."""

    def __init__(self, processes: int, client: str = "python") -> None:
        command = [str(loadgo())] if client == "go" else [PYTHON, str(BENCH / "load.py"), "--serve"]
        env = {**os.environ, "GOMAXPROCS": str(len(LOAD_CPUS))}
        self._running = [
            subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env
            )
            for _ in range(processes)
        ]
        for process in self._running:
            os.sched_setaffinity(process.pid, LOAD_CPUS)

    def run(self, kind: str, target: str, *, concurrency: int, **options: Any) -> LoadRun:
        """One batch of ``concurrency`` workers; ``options`` are ``bench/load.py``'s
        (``per_worker``, ``duration``, ``stagger``, ``tokens``, ``model``,
        ``coalescing``, ``header`` as a list of ``NAME=VALUE``, ``gaps``) and
        ``deadline`` in seconds after the start."""
        count = len(self._running)
        shares = [concurrency // count + (i < concurrency % count) for i in range(count)]
        deadline = options.pop("deadline", 0.0)
        busy = []
        for index, (process, share) in enumerate(zip(self._running, shares, strict=True)):
            if not share:
                continue
            spec = {"kind": kind, "target": target, "concurrency": share, "process": index,
                    "processes": count, "total": concurrency, **options}  # fmt: skip
            self._send(process, spec)
            busy.append(process)
        for process in busy:
            assert json.loads(self._receive(process)) == {"ready": True}
        start_at = time.time() + 0.2
        for process in busy:
            self._send(
                process, {"start_at": start_at, "deadline": deadline and start_at + deadline}
            )
        streams: list[dict[str, Any]] = []
        cpu = 0.0
        for process in busy:
            answer = json.loads(self._receive(process))
            streams += answer["streams"]
            cpu += answer["cpu_seconds"]
        return LoadRun(streams, cpu)

    def close(self) -> None:
        for process in self._running:
            assert process.stdin is not None
            process.stdin.close()
        for process in self._running:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    @staticmethod
    def _send(process: subprocess.Popen[str], message: dict[str, Any]) -> None:
        assert process.stdin is not None
        process.stdin.write(json.dumps(message) + "\n")
        process.stdin.flush()

    @staticmethod
    def _receive(process: subprocess.Popen[str]) -> str:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"load process {process.pid} exited ({process.wait()})")
        return line


@contextlib.contextmanager
def loaders(processes: int, client: str = "python") -> Iterator[Loaders]:
    """``processes`` load processes for the ``with`` block: ``bench/load.py`` (``python``,
    grpc.aio and httpx) or ``bench/loadgo`` (``go``, grpc-go and net/http)."""
    pool = Loaders(processes, client)
    try:
        yield pool
    finally:
        pool.close()


def load(
    kind: str, target: str, *, concurrency: int, processes: int = 1, **options: Any
) -> LoadRun:
    """One batch in ``processes`` fresh load processes (see :meth:`Loaders.run`)."""
    with loaders(processes) as pool:
        return pool.run(kind, target, concurrency=concurrency, **options)


def loadgo() -> Path:
    """The Go load client (``bench/loadgo``), built into ``.bench/`` when its source is newer."""
    binary = ROOT / ".bench" / "loadgo"
    sources = [*(BENCH / "loadgo").iterdir()]
    if not binary.exists() or binary.stat().st_mtime < max(p.stat().st_mtime for p in sources):
        binary.parent.mkdir(exist_ok=True)
        subprocess.run(["go", "build", "-o", str(binary), "."], cwd=BENCH / "loadgo", check=True)
    return binary


def machine_state() -> dict[str, Any]:
    """The load average and any process outside this one's tree using CPU now (another
    job on the machine skews every number): CPU percent over 0.5 s and program names."""
    me = psutil.Process()
    ours = {me.pid, *(p.pid for p in me.children(recursive=True))}
    others = [p for p in psutil.process_iter(["cmdline", "name"]) if p.pid not in ours]
    for each in others:
        with contextlib.suppress(psutil.Error):
            each.cpu_percent(None)
    time.sleep(0.5)
    busy = []
    for each in others:
        with contextlib.suppress(psutil.Error):
            percent = each.cpu_percent(None)
            if percent >= 5:
                words = each.info["cmdline"] or [each.info["name"] or "?"]
                command = " ".join(Path(w).name if "/" in w else w for w in words[:4])
                busy.append({"pid": each.pid, "cpu_percent": percent, "command": command[:80]})
    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "other_processes": busy}


class Cores:
    """How busy each core was between :meth:`start` and :meth:`stop` (from ``/proc/stat``,
    so kernel work no process is charged for, such as loopback packets, counts too)."""

    def __init__(self) -> None:
        self.busy: list[float] = []
        """Per core, the busy fraction."""
        self.softirq: list[float] = []
        """Per core, the fraction spent in software interrupts (network packets)."""
        self._before: list[Any] = []

    def start(self) -> Cores:
        self._before = psutil.cpu_times(percpu=True)
        return self

    def stop(self) -> Cores:
        after = psutil.cpu_times(percpu=True)
        for old, new in zip(self._before, after, strict=True):
            total = sum(new) - sum(old) or 1.0
            idle = (new.idle - old.idle) + (new.iowait - old.iowait)
            self.busy.append(round(1 - idle / total, 3))
            self.softirq.append(round((new.softirq - old.softirq) / total, 3))
        return self


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, interpolated; NaN for none."""
    if not values:
        return float("nan")
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
def llmrouter(
    config: Path, cpus: set[int] | None = GATEWAY_CPUS, *, gateway: bool = False
) -> Iterator[Server]:
    """``llmrouter serve`` with ``config`` on a free loopback port, pinned to ``cpus``;
    with ``gateway``, its WebSocket gateway on another."""
    port = _free_port()
    env = {"LLMROUTER_CONFIG": str(config), "LLMROUTER_SERVER__PORT": str(port),
           "LLMROUTER_SERVER__HOST": "127.0.0.1"}  # fmt: skip
    gateway_port = _free_port() if gateway else None
    if gateway_port is not None:
        env["LLMROUTER_GATEWAY__PORT"] = str(gateway_port)
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            [LLMROUTER, "serve"], stderr=log, stdout=log, text=True, cwd=ROOT,
            env={**os.environ, **env},
        )  # fmt: skip
        try:
            if cpus:
                os.sched_setaffinity(process.pid, cpus)
            _wait_healthy(f"127.0.0.1:{port}", process, log)
            yield Server(process, port, gateway_port)
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
