"""Where the client commands find the server: ``--address``, ``LLMROUTER_ADDRESS``, default."""

from __future__ import annotations

from collections.abc import Mapping

from llmrouter_server.cli.errors import UsageError

DEFAULT_ADDRESS = "localhost:50051"
"""The address ``llmrouter serve`` listens on with the default configuration."""

ADDRESS_ENV = "LLMROUTER_ADDRESS"
"""The environment variable that names the server when ``--address`` is not given."""

_TARGET_SCHEMES = ("dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:", "vsock:")
"""gRPC target name schemes, passed to grpc as they are."""


def resolve_address(option: str | None, environ: Mapping[str, str]) -> str:
    """The server address: ``--address``, else ``$LLMROUTER_ADDRESS``, else the default.

    An empty ``LLMROUTER_ADDRESS`` counts as unset.

    Raises:
        UsageError: The address is not ``HOST:PORT`` or a gRPC target name; the
            message says where it came from.
    """
    if option is not None:
        return _checked(option, "--address")
    from_env = environ.get(ADDRESS_ENV)
    if from_env:
        return _checked(from_env, ADDRESS_ENV)
    return DEFAULT_ADDRESS


def _checked(address: str, source: str) -> str:
    if address.startswith(_TARGET_SCHEMES):
        return address
    problem = _problem(address)
    if problem is not None:
        raise UsageError(
            f"{source} {address!r}: {problem}; give HOST:PORT, such as {DEFAULT_ADDRESS}"
        )
    return address


def _problem(address: str) -> str | None:
    if not address:
        return "empty"
    if "://" in address:
        return "a URL is not an address"
    host, colon, port = address.rpartition(":")
    if not colon or not host or host.endswith(":"):
        return "no port"
    if not port.isdigit() or not 0 < int(port) < 65536:
        return "the port must be a number from 1 to 65535"
    return None
