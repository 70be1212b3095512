"""``llmrouter serve`` as a subprocess on a free loopback port, as users run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.backends.upstream import free_port

LLMROUTER = [str(Path(sys.executable).with_name("llmrouter"))]


@contextmanager
def llmrouter_serve(**settings: str) -> Iterator[str]:
    """Runs ``llmrouter serve`` until it is healthy; yields its address; stops it with SIGTERM.

    Args:
        **settings: More ``LLMROUTER_...`` environment variables for the server.
    """
    port = free_port()
    env = {
        **os.environ,
        "LLMROUTER_SERVER__HOST": "127.0.0.1",
        "LLMROUTER_SERVER__PORT": str(port),
        **settings,
    }
    process = subprocess.Popen([*LLMROUTER, "serve"], env=env, stderr=subprocess.PIPE, text=True)
    address = f"127.0.0.1:{port}"
    try:
        _wait_serving(address, process)
        yield address
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(15) == 0
        finally:
            if process.poll() is None:
                process.kill()
            assert process.stderr is not None
            process.stderr.close()


def _wait_serving(address: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "llmrouter serve exited"
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
