"""The ``llmrouter`` command line: commands, options and help text."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import NoReturn

from llmrouter_server import __version__
from llmrouter_server.cli import commands
from llmrouter_server.cli.address import ADDRESS_ENV, DEFAULT_ADDRESS
from llmrouter_server.cli.credentials import API_KEY_ENV
from llmrouter_server.cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from llmrouter_server.cli.serve import serve
from llmrouter_server.cli.stats import stats

Run = Callable[[argparse.Namespace], Awaitable[int]]
"""A command's coroutine function; it returns the exit status."""

DESCRIPTION = "llmrouter: route and stream LLM generations over gRPC."

EPILOG = f"""\
client commands (generate, models, stats, health) reach the server at --address,
else ${ADDRESS_ENV}, else {DEFAULT_ADDRESS}.

they send the API key in --api-key-file, else ${API_KEY_ENV} (never
printed), and use TLS with --tls or any --tls-* option, each else its
variable: $LLMROUTER_TLS_CA, _CERT, _KEY, _SERVER_NAME.

errors are one line on stderr; --debug adds the traceback.

exit status:
  {EXIT_OK}    success (health: the service is SERVING)
  {EXIT_FAILURE}    runtime failure: server unreachable, an error status from the server,
       a service not SERVING, or serve cannot listen
  {EXIT_USAGE}    usage or configuration error: a bad option, address or config key
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
"""

SERVE_EPILOG = f"""\
settings come from the YAML file (--config, else $LLMROUTER_CONFIG) and from
LLMROUTER_<SECTION>__<KEY> variables, e.g. LLMROUTER_SERVER__PORT=50052.

{EPILOG}"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        """Reports a usage error in one line, pointing at the command's help."""
        self.exit(EXIT_USAGE, f"llmrouter: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser for every command; each sets ``run`` to its coroutine function."""
    parser = _Parser(
        prog="llmrouter",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=__version__)
    _debug(parser, default=False)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    serving = _command(sub, "serve", "run the gRPC server", serve, epilog=SERVE_EPILOG)
    serving.add_argument("--config", help="YAML config file (default: $LLMROUTER_CONFIG)")
    serving.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")

    generate = _command(sub, "generate", "stream a generation to the terminal", commands.generate)
    generate.add_argument("prompt", help="the user message")
    generate.add_argument("--model", default="", help="route or BACKEND/MODEL")
    generate.add_argument("--system", default="", help="a system message")
    generate.add_argument("--max-tokens", type=int, help="token limit")
    generate.add_argument("--temperature", type=float, help="0 is greedy")
    generate.add_argument("--seed", type=int, help="random seed")
    generate.add_argument("--stop", action="append", default=[], help="stop sequence")
    generate.add_argument("--json", action="store_true", help="ask for JSON output")
    _connection(generate)

    _connection(_command(sub, "models", "list routes and targets", commands.models))

    report = _command(sub, "stats", "show the server's stream statistics", stats)
    report.add_argument("--model", default="", help="only this route or BACKEND/MODEL")
    report.add_argument(
        "--watch",
        nargs="?",
        type=_positive,
        const=2.0,
        metavar="SECONDS",
        help="redraw every SECONDS (default 2) until Ctrl-C",
    )
    _connection(report)

    check = _command(sub, "health", "exit 0 when the server is SERVING", commands.health)
    check.add_argument("--service", default="", help="service name; empty is overall")
    _connection(check)
    return parser


def _command(
    sub: argparse._SubParsersAction[_Parser],
    name: str,
    summary: str,
    run: Run,
    *,
    epilog: str = EPILOG,
) -> _Parser:
    command = sub.add_parser(
        name,
        help=summary,
        description=f"llmrouter {name}: {summary}.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.set_defaults(run=run)
    _debug(command, default=argparse.SUPPRESS)
    return command


def _connection(command: argparse.ArgumentParser) -> None:
    """Where the server is and what the command presents to it."""
    group = command.add_argument_group("connection")
    group.add_argument(
        "--address", help=f"server HOST:PORT (default: ${ADDRESS_ENV}, else {DEFAULT_ADDRESS})"
    )
    group.add_argument(
        "--api-key-file",
        metavar="PATH",
        help=f"file holding the API key (default: ${API_KEY_ENV}, the key itself)",
    )
    group.add_argument(
        "--tls", action="store_true", help="use TLS; implied by any --tls-* option or variable"
    )
    group.add_argument(
        "--tls-ca", metavar="FILE", help="CA certificates (PEM) to trust instead of the system's"
    )
    group.add_argument("--tls-cert", metavar="FILE", help="client certificate (PEM) for mutual TLS")
    group.add_argument("--tls-key", metavar="FILE", help="private key (PEM) of --tls-cert")
    group.add_argument(
        "--tls-server-name", metavar="NAME", help="the name the server's certificate carries"
    )


def _positive(value: str) -> float:
    """A positive number of seconds, for ``--watch``."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return seconds


def _debug(parser: argparse.ArgumentParser, *, default: object) -> None:
    """``--debug`` before or after the command.

    The command's copy defaults to ``SUPPRESS``: argparse copies a command's
    defaults over the top level's values, which would undo ``llmrouter --debug``.
    """
    parser.add_argument(
        "--debug", action="store_true", default=default, help="show the traceback of an error"
    )
