"""The ``llmrouter`` command as a subprocess, with a clean environment for its address."""

from __future__ import annotations

import os
import subprocess

from tests.serve_process import LLMROUTER

RECONNECT = "Set --address or LLMROUTER_ADDRESS."
"""How every "cannot reach" message ends."""


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Runs ``llmrouter ARGS`` to its end; ``LLMROUTER_ADDRESS`` only when ``env`` sets it.

    Args:
        *args: The command line after ``llmrouter``.
        env: More environment variables for the command.
        timeout: Seconds the command may take.
    """
    environ = {key: value for key, value in os.environ.items() if key != "LLMROUTER_ADDRESS"}
    return subprocess.run(
        [*LLMROUTER, *args],
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def unreachable(address: str, cause: str = "connection refused") -> str:
    """The one line the client commands print when nothing listens at ``address``."""
    return (
        f"llmrouter: cannot reach {address} ({cause}); is 'llmrouter serve' running? {RECONNECT}\n"
    )
