"""``llmrouter serve`` on a busy port or with bad settings: one line, the OS reason, exit 1 or 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.backends.upstream import free_port
from tests.cli.process import run_cli

pytestmark = pytest.mark.timeout(120)

BUSY_REMEDY = (
    "stop the process that holds the port, or choose another port with server.port or "
    "LLMROUTER_SERVER__PORT"
)

# Runs the CLI with the first bind check finding the port free, as when another
# process takes it between that check and grpcio's bind.
_TAKEN_AFTER_THE_CHECK = """
import importlib, sys
from llmrouter_server.cli import main
module = importlib.import_module("llmrouter_server.cli.serve")
real, calls = module.bind_error, []
def free_at_first(host, port):
    calls.append(host)
    return None if len(calls) == 1 else real(host, port)
module.bind_error = free_at_first
sys.exit(main(["serve"]))
"""


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another process listens on, on every interface."""
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", free_port()))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_a_busy_port_names_the_os_reason(busy_port: int) -> None:
    result = run_cli("serve", env={"LLMROUTER_SERVER__PORT": str(busy_port)})

    assert result.returncode == 2
    assert result.stderr == (
        f"llmrouter: cannot listen on 127.0.0.1:{busy_port}: address already in use; "
        f"{BUSY_REMEDY}\n"
    )


def test_a_port_taken_after_the_check_still_names_the_os_reason(busy_port: int) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _TAKEN_AFTER_THE_CHECK],
        env={**os.environ, "LLMROUTER_SERVER__PORT": str(busy_port)},
        capture_output=True,
        text=True,
        check=False,
        timeout=100,
    )

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    # grpcio's own log line about the failed bind may come first.
    assert result.stderr.splitlines()[-1] == (
        f"llmrouter: cannot listen on 127.0.0.1:{busy_port}: address already in use; {BUSY_REMEDY}"
    )


def test_a_host_of_another_machine_is_named() -> None:
    # 192.0.2.0/24 is TEST-NET-1, never assigned to a host.
    result = run_cli("serve", env={"LLMROUTER_SERVER__HOST": "192.0.2.1"})

    assert result.returncode == 2
    assert result.stderr == (
        "llmrouter: cannot listen on 192.0.2.1:50051: cannot assign requested address; "
        "the host is not an address of this machine; set server.host or LLMROUTER_SERVER__HOST\n"
    )


def test_a_bad_setting_is_a_usage_error_naming_the_key() -> None:
    result = run_cli("serve", env={"LLMROUTER_SERVER__PORT": "high"})

    assert result.returncode == 2
    assert result.stderr == (
        "llmrouter: invalid configuration: server.port: Input should be a valid integer, "
        "unable to parse string as an integer; "
        "see 'llmrouter serve --help' for where settings come from\n"
    )
