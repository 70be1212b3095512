"""The ``llmrouter`` command: serve, generate, models, stats, health.

``main`` turns every failure into one line on stderr (with the traceback
too under ``--debug``) and an exit status: 0 success, 1 runtime failure,
2 usage or configuration error, 130 interrupted.
"""

from __future__ import annotations

import os

# grpc's C core logs every failed TLS handshake on stderr at INFO, on top of
# the error the call ends with, and reads its level once, when grpc is
# imported: so before the imports below. GRPC_VERBOSITY set by the user wins.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import asyncio
import sys
import traceback
from argparse import Namespace

from llmrouter_server.cli.address import resolve_address
from llmrouter_server.cli.credentials import resolve_credentials
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
        args.credentials = resolve_credentials(args, os.environ)
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
