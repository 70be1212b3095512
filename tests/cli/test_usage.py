"""Usage errors are one line and exit 2; the help names the address sources and exit codes."""

from __future__ import annotations

import pytest

from tests.cli.process import run_cli

pytestmark = pytest.mark.timeout(60)

EXIT_CODES = """\
exit status:
  0    success (health: the service is SERVING)
  1    runtime failure: server unreachable, an error status from the server,
       a service not SERVING, or serve cannot listen
  2    usage or configuration error: a bad option, address or config key
  130  interrupted (Ctrl-C)
"""


@pytest.mark.parametrize("command", [[], ["serve"], ["generate"], ["models"], ["health"]])
def test_every_help_documents_the_exit_codes_and_the_address(command: list[str]) -> None:
    result = run_cli(*command, "--help")

    assert result.returncode == 0
    assert result.stdout.endswith(EXIT_CODES)
    assert "at --address,\nelse $LLMROUTER_ADDRESS, else localhost:50051." in result.stdout
    assert "--debug" in result.stdout


@pytest.mark.parametrize("command", [["generate"], ["models"], ["health"]])
def test_client_commands_take_an_address(command: list[str]) -> None:
    result = run_cli(*command, "--help")

    words = " ".join(result.stdout.split())
    assert (
        "--address ADDRESS server HOST:PORT (default: $LLMROUTER_ADDRESS, else localhost:50051)"
        in words
    )


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ([], "the following arguments are required: COMMAND; see 'llmrouter --help'"),
        (
            ["frob"],
            "argument COMMAND: invalid choice: 'frob' (choose from 'serve', 'generate', "
            "'models', 'stats', 'health'); see 'llmrouter --help'",
        ),
        (
            ["generate"],
            "the following arguments are required: prompt; see 'llmrouter generate --help'",
        ),
        (
            ["generate", "hi", "--max-tokens", "many"],
            "argument --max-tokens: invalid int value: 'many'; see 'llmrouter generate --help'",
        ),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(command: list[str], message: str) -> None:
    result = run_cli(*command)

    assert result.returncode == 2
    assert result.stderr == f"llmrouter: {message}\n"
    assert result.stdout == ""
