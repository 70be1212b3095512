"""Client commands against a closed port: one line naming cause and remedy, exit 1."""

from __future__ import annotations

import pytest

from tests.backends.upstream import free_port
from tests.cli.process import RECONNECT, run_cli, unreachable

pytestmark = pytest.mark.timeout(60)

COMMANDS = [["models"], ["health"], ["generate", "hi"]]


@pytest.fixture
def closed() -> str:
    """A loopback address where nothing listens."""
    return f"127.0.0.1:{free_port()}"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[0])
def test_a_closed_port_is_one_line_and_exit_1(command: list[str], closed: str) -> None:
    result = run_cli(*command, "--address", closed)

    assert result.returncode == 1
    assert result.stderr == unreachable(closed)
    assert result.stdout == ""


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[0])
def test_the_address_comes_from_the_environment(command: list[str], closed: str) -> None:
    result = run_cli(*command, env={"LLMROUTER_ADDRESS": closed})

    assert result.returncode == 1
    assert result.stderr == unreachable(closed)


def test_the_option_wins_over_the_environment(closed: str) -> None:
    other = f"127.0.0.1:{free_port()}"

    result = run_cli("models", "--address", closed, env={"LLMROUTER_ADDRESS": other})

    assert result.stderr == unreachable(closed)


@pytest.mark.parametrize("position", ["before", "after"])
def test_debug_adds_the_traceback_before_the_line(position: str, closed: str) -> None:
    command = ["models", "--address", closed]
    command = ["--debug", *command] if position == "before" else [*command, "--debug"]

    result = run_cli(*command)

    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):\n")
    assert "grpc.aio._call.AioRpcError" in result.stderr
    assert result.stderr.endswith(unreachable(closed))


def test_an_unknown_host_names_the_lookup_failure() -> None:
    result = run_cli("models", "--address", "no-such-host.invalid:50051")

    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("llmrouter: cannot reach no-such-host.invalid:50051 (")
    assert line.endswith(f"); is 'llmrouter serve' running? {RECONNECT}")


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("localhost", "no port"),
        ("localhost:http", "the port must be a number from 1 to 65535"),
        ("localhost:99999", "the port must be a number from 1 to 65535"),
        ("http://localhost:50051", "a URL is not an address"),
    ],
)
def test_a_malformed_address_is_a_usage_error(address: str, problem: str) -> None:
    from_option = run_cli("models", "--address", address)
    from_env = run_cli("health", env={"LLMROUTER_ADDRESS": address})

    assert (from_option.returncode, from_env.returncode) == (2, 2)
    remedy = "give HOST:PORT, such as localhost:50051"
    assert from_option.stderr == f"llmrouter: --address {address!r}: {problem}; {remedy}\n"
    assert from_env.stderr == f"llmrouter: LLMROUTER_ADDRESS {address!r}: {problem}; {remedy}\n"
