"""``llmrouter serve`` as a subprocess on a free loopback port, as users run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tests.backends.upstream import free_port

LLMROUTER = [str(Path(sys.executable).with_name("llmrouter"))]


@contextmanager
def llmrouter_serve(**settings: str) -> Iterator[str]:
    """Runs ``llmrouter serve`` until it is healthy; yields its address; stops it with SIGTERM.

    Args:
        **settings: More ``LLMROUTER_...`` environment variables for the server.
    """
    with llmrouter_process(**settings) as (address, _):
        yield address


@contextmanager
def llmrouter_process(**settings: str) -> Iterator[tuple[str, int]]:
    """Like ``llmrouter_serve``, and also yields the server's process id."""
    port = free_port()
    env = {
        **os.environ,
        "LLMROUTER_SERVER__HOST": "127.0.0.1",
        "LLMROUTER_SERVER__PORT": str(port),
        **settings,
    }
    # The log goes to a file: a pipe nobody reads would block the server once full.
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen([*LLMROUTER, "serve"], env=env, stderr=log, text=True)
        address = f"127.0.0.1:{port}"
        try:
            _wait_serving(address, process, log)
            yield address, process.pid
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                assert process.wait(15) == 0, _tail(log)
            finally:
                if process.poll() is None:
                    process.kill()


def _tail(log: IO[str]) -> str:
    log.seek(0)
    return "llmrouter serve said:\n" + log.read()[-4000:]


def _wait_serving(address: str, process: subprocess.Popen[str], log: IO[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, _tail(log)
        probe = subprocess.run(
            [*LLMROUTER, "health", "--address", address],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError("llmrouter serve did not become healthy in 60 s")
