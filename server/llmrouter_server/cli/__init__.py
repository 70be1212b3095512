"""The ``llmrouter`` command: serve, generate, models, health."""

from __future__ import annotations

import argparse
import asyncio
import sys

from llmrouter_server import __version__
from llmrouter_server.errors import ConfigError

DEFAULT_ADDRESS = "localhost:50051"


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(asyncio.run(args.run(args)) or 0)
    except ConfigError as exc:
        print(f"llmrouter: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    from llmrouter_server.cli import commands

    parser = argparse.ArgumentParser(prog="llmrouter", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the gRPC server")
    serve.add_argument("--config", help="YAML config file (default: $LLMROUTER_CONFIG)")
    serve.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    serve.set_defaults(run=_serve)

    generate = sub.add_parser("generate", help="stream a generation to the terminal")
    generate.add_argument("prompt", help="the user message")
    generate.add_argument("--model", default="", help="route or BACKEND/MODEL")
    generate.add_argument("--system", default="", help="a system message")
    generate.add_argument("--max-tokens", type=int, help="token limit")
    generate.add_argument("--temperature", type=float, help="0 is greedy")
    generate.add_argument("--seed", type=int, help="random seed")
    generate.add_argument("--stop", action="append", default=[], help="stop sequence")
    generate.add_argument("--json", action="store_true", help="ask for JSON output")
    _address(generate)
    generate.set_defaults(run=commands.generate)

    models = sub.add_parser("models", help="list routes and targets")
    _address(models)
    models.set_defaults(run=commands.models)

    check = sub.add_parser("health", help="exit 0 when the server is SERVING")
    _address(check)
    check.add_argument("--service", default="", help="service name; empty is overall")
    check.set_defaults(run=commands.health)
    return parser


def _address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address", default=DEFAULT_ADDRESS, help=f"server address (default {DEFAULT_ADDRESS})"
    )


async def _serve(args: argparse.Namespace) -> int:
    from llmrouter_server.app import serve
    from llmrouter_server.config import load_config
    from llmrouter_server.logs import configure

    configure(args.log_level)
    await serve(load_config(args.config))
    return 0
