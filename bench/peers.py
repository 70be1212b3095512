"""Peer LLM gateways to compare llmrouter with: LiteLLM, Portkey and SMG.

Each relays an OpenAI-compatible streaming upstream. ``bench/install_peers.sh``
installs them, pinned, under ``.bench/peers/``; :func:`peer` starts one on a
free loopback port, in front of a given upstream, and stops it afterwards::

    with peer("litellm", "http://127.0.0.1:8000/v1") as gateway:
        httpx.post(gateway.base_url + "/chat/completions", headers=gateway.headers,
                   json={"model": gateway.model, "stream": True, "messages": [...]})

Every peer listens on 127.0.0.1 only, logs little and to a file, passes the
request's model name through, and sends the upstream nothing but the relayed
requests (no health checks, model-list or load polling, telemetry). The first
request through a fresh LiteLLM is slow (about 1 s of lazy imports): warm a
peer up before measuring it. LiteLLM rebuilds every chunk (its own ``id``,
``created``, ``model``) and asks the upstream for a usage chunk; Portkey waits
25 ms before relaying the first chunk; SMG relays the upstream's bytes as they are.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[1]
PEERS_DIR = ROOT / ".bench" / "peers"
VERSIONS = {"litellm": "1.108.7", "portkey": "1.15.2", "smg": "1.13.0"}
PEERS: tuple[str, ...] = ("litellm", "portkey", "smg")
MODEL = "bench"
# What the peers send the upstream as its API key (the benchmark upstreams ignore it).
UPSTREAM_KEY = "sk-upstream"
LITELLM_MASTER_KEY = "sk-bench"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Gateway:
    """A running peer, as a client sees it.

    Attributes:
        name: The peer, one of :data:`PEERS`.
        version: Its pinned version.
        base_url: The OpenAI-compatible base; requests go to ``base_url + "/chat/completions"``.
        headers: What a client must send (authentication, Portkey's routing headers).
        model: A model name for the request body; every peer passes any name through.
        pid: The gateway's main process (its children count too when measuring CPU).
    """

    name: str
    version: str
    base_url: str
    headers: dict[str, str]
    model: str
    pid: int


@dataclass(frozen=True)
class _Launch:
    """How to start one peer: its command, extra environment, client headers and a
    path that answers GET without touching the upstream."""

    command: list[str]
    env: dict[str, str]
    headers: dict[str, str]
    ready_path: str


def installed(name: str) -> bool:
    """Whether ``bench/install_peers.sh`` has installed peer ``name`` at its pinned version."""
    return (PEERS_DIR / name / f".installed-{VERSIONS[name]}").is_file()


@contextlib.contextmanager
def peer(name: str, upstream_base: str, cpus: set[int] | None = None) -> Iterator[Gateway]:
    """Starts peer ``name`` on a free loopback port, relaying to ``upstream_base``.

    ``upstream_base`` is the upstream's OpenAI base URL (``http://127.0.0.1:PORT/v1``).
    The peer runs pinned to ``cpus`` when given, in a session of its own; once it
    answers, its :class:`Gateway` is yielded. On exit the peer and its children get
    SIGTERM, then SIGKILL after 10 s.
    """
    if name not in VERSIONS:
        raise ValueError(f"unknown peer {name!r}; the peers are {', '.join(PEERS)}")
    if not installed(name):
        raise RuntimeError(f"{name} is not installed: run bash bench/install_peers.sh")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        workdir = Path(tmp)
        launch = _LAUNCHERS[name](upstream_base.rstrip("/"), port, workdir)
        command = launch.command
        if cpus:
            command = ["taskset", "--cpu-list", ",".join(map(str, sorted(cpus))), *command]
        # The log goes to a file: a pipe nobody reads would block the peer once full.
        with (workdir / "peer.log").open("w+b") as log:
            process = subprocess.Popen(
                command,
                cwd=workdir,
                env={**os.environ, **launch.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                _wait_until_up(name, f"http://127.0.0.1:{port}{launch.ready_path}", process, log)
                yield Gateway(
                    name=name,
                    version=VERSIONS[name],
                    base_url=f"http://127.0.0.1:{port}/v1",
                    headers=launch.headers,
                    model=MODEL,
                    pid=process.pid,
                )
            finally:
                _stop(process)


def _litellm(upstream: str, port: int, workdir: Path) -> _Launch:
    """LiteLLM's proxy, one uvicorn worker, with a master key and no database (so no
    spend tracking); logging at ERROR, telemetry off, the bundled model-cost map (it
    would fetch one from GitHub), no polling of the upstream's model list."""
    config = {
        "model_list": [
            {
                # A wildcard, so any model name passes through as with the other peers.
                "model_name": "*",
                "litellm_params": {
                    "model": "openai/*",
                    "api_base": upstream,
                    "api_key": UPSTREAM_KEY,
                },
            }
        ],
        "litellm_settings": {"telemetry": False, "set_verbose": False},
        "general_settings": {
            "master_key": LITELLM_MASTER_KEY,
            "disable_spend_logs": True,
            # Otherwise it GETs the upstream's /v1/models at start and every 5 minutes.
            "disable_model_info_refresh": True,
        },
    }
    # JSON is YAML, so the config needs no YAML writer.
    (workdir / "config.yaml").write_text(json.dumps(config, indent=2))
    command = [
        str(PEERS_DIR / "litellm" / "bin" / "litellm"),
        "--config", "config.yaml",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--num_workers", "1",
    ]  # fmt: skip
    return _Launch(
        command=command,
        env={
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY_DISABLED": "true",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        },
        headers={"Authorization": f"Bearer {LITELLM_MASTER_KEY}"},
        ready_path="/health/liveliness",
    )


def _portkey(upstream: str, port: int, workdir: Path) -> _Launch:
    """Portkey's Node gateway through ``bench/portkey_launch.mjs``, which binds it to
    127.0.0.1; the provider and upstream come with each request as headers."""
    node = shutil.which("node") or "node"
    return _Launch(
        command=[node, str(ROOT / "bench" / "portkey_launch.mjs"), f"--port={port}", "--headless"],
        env={"PORTKEY_HOST": "127.0.0.1"},
        headers={
            "Authorization": f"Bearer {UPSTREAM_KEY}",
            "x-portkey-provider": "openai",
            "x-portkey-custom-host": upstream,
        },
        ready_path="/",
    )


def _smg(upstream: str, port: int, workdir: Path) -> _Launch:
    """SMG's router with the OpenAI backend and one worker (the upstream without ``/v1``),
    round robin, no health checks or load polling, metrics on another loopback port."""
    command = [
        str(PEERS_DIR / "smg" / "bin" / "smg"), "launch",
        "--backend", "openai",
        "--worker-urls", upstream.removesuffix("/v1"),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--prometheus-host", "127.0.0.1",
        "--prometheus-port", str(_free_port()),
        "--policy", "round_robin",
        "--disable-health-check",
        "--disable-load-monitoring",
        "--log-level", "warn",
        # It otherwise keeps listening for 5 s after SIGTERM, for load balancers to notice.
        "--shutdown-grace-period-secs", "1",
    ]  # fmt: skip
    return _Launch(command=command, env={}, headers={}, ready_path="/health")


_LAUNCHERS = {"litellm": _litellm, "portkey": _portkey, "smg": _smg}


def _free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(name: str, url: str, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    """Polls ``url`` until it answers 200, for at most READY_TIMEOUT seconds."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{_tail(log)}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not answer {url} in {READY_TIMEOUT:g} s:\n{_tail(log)}")


def _tail(log: IO[bytes], size: int = 4000) -> str:
    log.flush()
    log.seek(0, os.SEEK_END)
    log.seek(max(0, log.tell() - size))
    return log.read().decode(errors="replace")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the peer's process group, SIGKILL after STOP_TIMEOUT; then SIGKILL to
    whatever is left of the group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
