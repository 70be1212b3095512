"""The ``llmrouter`` command: serve, generate, models, health.

``main`` turns every failure into one line on stderr (with the traceback
too under ``--debug``) and an exit status: 0 success, 1 runtime failure,
2 usage or configuration error, 130 interrupted.
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
from argparse import Namespace

from llmrouter_server.cli.address import resolve_address
from llmrouter_server.cli.errors import EXIT_INTERRUPTED, CliError, UsageError
from llmrouter_server.cli.parser import build_parser
from llmrouter_server.errors import ConfigError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # every failure becomes one line and a status
        return _report(exc, debug=args.debug)


def _run(args: Namespace) -> int:
    if "address" in args:
        args.address = resolve_address(args.address, os.environ)
    return int(asyncio.run(args.run(args)))


def _report(exc: Exception, *, debug: bool) -> int:
    """Prints the one-line message (after the traceback under ``--debug``); returns the status."""
    if debug:
        traceback.print_exception(exc)
    error = _as_cli_error(exc)
    print(f"llmrouter: {error.message}", file=sys.stderr)
    return error.exit_status


def _as_cli_error(exc: Exception) -> CliError:
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, ConfigError):
        return UsageError(f"{exc}; see 'llmrouter serve --help' for where settings come from")
    return CliError(f"unexpected {type(exc).__name__}: {exc}; rerun with --debug for the traceback")
