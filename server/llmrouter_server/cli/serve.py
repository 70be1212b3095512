"""``llmrouter serve``: load the configuration, check the address, run the server.

grpcio reports a port it cannot bind only as ``RuntimeError: Failed to bind``;
the operating system's reason comes from binding the address here with the
socket module, once before starting (so a busy port fails before a model
loads) and again if the server still fails to start (the port was taken in
between).
"""

from __future__ import annotations

import argparse
import errno
import socket

from llmrouter_server.cli.errors import EXIT_OK, CannotListen

_REMEDIES = {
    errno.EADDRINUSE: "stop the process that holds the port, or choose another port with "
    "server.port or LLMROUTER_SERVER__PORT",
    errno.EACCES: "ports below 1024 need privileges; choose another port with "
    "server.port or LLMROUTER_SERVER__PORT",
    errno.EADDRNOTAVAIL: "the host is not an address of this machine; set server.host "
    "or LLMROUTER_SERVER__HOST",
}
"""What to do about the usual reasons a bind fails, by errno."""

_DEFAULT_REMEDY = "check server.host and server.port (LLMROUTER_SERVER__HOST, __PORT)"


async def serve(args: argparse.Namespace) -> int:
    """Runs the server until SIGTERM or SIGINT.

    Raises:
        ConfigError: The configuration is invalid.
        CannotListen: The host and port cannot be bound; names the OS reason.
    """
    from llmrouter_server.app import serve as run
    from llmrouter_server.config import load_config
    from llmrouter_server.logs import configure

    config = load_config(args.config)
    host, port = config.server.host, config.server.port
    _raise_unless_bindable(host, port)
    configure(args.log_level, config.logging.format)
    try:
        await run(config)
    except RuntimeError:
        _raise_unless_bindable(host, port)
        raise
    return EXIT_OK


def _raise_unless_bindable(host: str, port: int) -> None:
    """Raises ``CannotListen`` with the OS reason when no address of ``host`` binds."""
    error = bind_error(host, port)
    if error is None:
        return
    where = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
    reason = (error.strerror or str(error)).lower()
    remedy = _REMEDIES.get(error.errno or 0, _DEFAULT_REMEDY)
    if isinstance(error, socket.gaierror):
        reason = f"cannot resolve the host ({reason})"
        remedy = "set server.host or LLMROUTER_SERVER__HOST"
    raise CannotListen(f"cannot listen on {where}: {reason}; {remedy}")


def bind_error(host: str, port: int) -> OSError | None:
    """Why ``host:port`` cannot be bound, or None when one of its addresses can be.

    Binds as grpcio does (``SO_REUSEADDR``, so a port with connections in
    TIME_WAIT is free) and closes the socket at once. A host with several
    addresses (``localhost``) is bindable when any of them is; the error is
    the first address's.
    """
    try:
        addresses = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as error:
        return error
    first: OSError | None = None
    for family, kind, proto, _, sockaddr in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(sockaddr)
            except OSError as error:
                first = first or error
                continue
            return None
    return first
