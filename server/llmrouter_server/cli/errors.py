"""The errors the ``llmrouter`` command reports, and how a failed call becomes one.

Every failure ends as one line on stderr that names the cause and the remedy,
and one of the exit statuses below::

    CliError              a runtime failure (exit 1)
    ├── Unreachable           no llmrouter server answered at the address, or it went away
    │   └── HandshakeFailed       the TLS handshake failed: trust, name, plaintext, client cert
    ├── ServerRefused         the server answered the call with an error status
    │   └── CredentialsRefused    UNAUTHENTICATED or PERMISSION_DENIED
    ├── CannotListen          ``serve`` could not bind its address (exit 2)
    └── UsageError            a bad option, address, credential file or configuration (exit 2)

``ConfigError`` from the configuration loader is reported as a ``UsageError``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

if TYPE_CHECKING:
    from llmrouter_server.cli.credentials import Credentials

EXIT_OK = 0
"""The command did what it was asked (``health``: the service is SERVING)."""
EXIT_FAILURE = 1
"""A runtime failure: unreachable, an error status, not SERVING."""
EXIT_USAGE = 2
"""A bad option, address or configuration (a port that cannot be bound included)."""
EXIT_INTERRUPTED = 130
"""Interrupted by Ctrl-C (128 + SIGINT)."""

ADDRESS_REMEDY = "Set --address or LLMROUTER_ADDRESS."
"""How a user points the client commands at another server."""

KEY_REMEDY = "set LLMROUTER_API_KEY or --api-key-file"
"""How a user gives the client commands an API key."""


class CliError(Exception):
    """A failure reported in one line; the base of the tree in the module docstring.

    Attributes:
        message: The line, without the ``llmrouter:`` prefix: cause, then remedy.
    """

    exit_status = EXIT_FAILURE
    """The process exit status this failure ends with."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unreachable(CliError):
    """No llmrouter server answered at the address, or the connection to it broke.

    Refused, unresolved, silent past the deadline, or a gRPC server without
    the call (another service at that address).
    """


class HandshakeFailed(Unreachable):
    """The TLS handshake failed.

    The server's certificate is not trusted or does not carry the host's name,
    the server speaks plaintext, or it refused the client certificate (or its
    absence).
    """


class ServerRefused(CliError):
    """The server answered the call with an error status."""


class CredentialsRefused(ServerRefused):
    """UNAUTHENTICATED (no key, or one the server does not know) or PERMISSION_DENIED."""


class CannotListen(CliError):
    """``serve`` could not bind its host and port: a configuration that cannot work.

    It exits 2 like any other configuration error, since the fix is in
    ``server.host`` / ``server.port``.
    """

    exit_status = EXIT_USAGE


class UsageError(CliError):
    """A bad option, address or configuration."""

    exit_status = EXIT_USAGE


_REMEDIES: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.INVALID_ARGUMENT: "fix that option (see 'llmrouter generate --help')",
    grpc.StatusCode.NOT_FOUND: "'llmrouter models' lists the routes and models",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "retry later",
    grpc.StatusCode.UNAVAILABLE: "retry later; 'llmrouter health' shows the server's state",
    grpc.StatusCode.FAILED_PRECONDITION: "the server's backend settings need fixing",
    grpc.StatusCode.DEADLINE_EXCEEDED: "retry later, or with a smaller --max-tokens",
}
"""What to do about a status the server sent, by code."""

_DEFAULT_REMEDY = "rerun with --debug for the details"

_CONNECT_FAILURES = ("failed to connect to all addresses", "errors resolving", "DNS resolution")
"""How grpc's UNAVAILABLE details begin when no connection was made (resolution, connect)."""


def rpc_failure(
    error: grpc.aio.AioRpcError,
    address: str,
    *,
    timeout: float | None = None,
    credentials: Credentials | None = None,
) -> CliError:
    """The one-line error for a call to ``address`` that failed with ``error``.

    Args:
        error: The failed call.
        address: The address the call went to, as the user gave it.
        timeout: The call's deadline in seconds, if it had one.
        credentials: The key and TLS settings the call went with, if any.
    """
    code, details = error.code(), error.details() or ""
    status = _rich_status(error)
    if status is None:
        failure = _handshake_failure(code, details, address, credentials)
        failure = failure or _transport_failure(code, details, address, timeout)
        if failure is not None:
            return failure
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return _credentials_refused(code, details, credentials)
    remedy = _retry_remedy(status) or _REMEDIES.get(code, _DEFAULT_REMEDY)
    return ServerRefused(f"{code.name}: {details}; {remedy}")


def _transport_failure(
    code: grpc.StatusCode, details: str, address: str, timeout: float | None
) -> Unreachable | None:
    """The error for a status grpc made up on this side, not one the server sent."""
    cause = _transport_cause(details)
    if code is grpc.StatusCode.UNAVAILABLE and details.startswith(_CONNECT_FAILURES):
        return Unreachable(
            f"cannot reach {address} ({cause}); is 'llmrouter serve' running? {ADDRESS_REMEDY}"
        )
    if code is grpc.StatusCode.UNAVAILABLE:
        return Unreachable(
            f"lost the connection to {address} ({cause}); "
            "retry when 'llmrouter health' says SERVING"
        )
    if code is grpc.StatusCode.DEADLINE_EXCEEDED and timeout is not None:
        return Unreachable(
            f"cannot reach {address} (no answer within {timeout:g} s); "
            f"is 'llmrouter serve' running there? {ADDRESS_REMEDY}"
        )
    if code is grpc.StatusCode.UNIMPLEMENTED:
        return Unreachable(
            f"{address} does not serve this call ({code.name}: {details}); "
            f"is it an llmrouter server? {ADDRESS_REMEDY}"
        )
    return None


def _credentials_refused(
    code: grpc.StatusCode, details: str, credentials: Credentials | None
) -> CredentialsRefused:
    """The error for a call the server refused for its credentials; it never shows the key."""
    status = f"{code.name}: {details}"
    if code is grpc.StatusCode.PERMISSION_DENIED:
        return CredentialsRefused(
            f"the server does not allow this call with these credentials ({status}); "
            "use a key or client certificate whose role allows it"
        )
    if credentials is not None and credentials.key_source:
        return CredentialsRefused(
            f"the server refused the key from {credentials.key_source} ({status}); "
            f"check it, or {KEY_REMEDY}"
        )
    return CredentialsRefused(f"the server refused the credentials ({status}); {KEY_REMEDY}")


_OPENSSL_REASON = re.compile(r"handshake failed.*?OPENSSL_internal:(\w+)(?:: ([^:]+))?", re.I)
"""grpc's words for a failed TLS handshake: the OpenSSL reason, then its detail."""


def _handshake_failure(
    code: grpc.StatusCode, details: str, address: str, credentials: Credentials | None
) -> Unreachable | None:
    """The error for a connection that failed in the TLS handshake, or for want of one."""
    if code is not grpc.StatusCode.UNAVAILABLE or not details.startswith(_CONNECT_FAILURES):
        return None
    tls = None if credentials is None else credentials.tls
    closed = "Socket closed" in details
    if tls is None:
        return (
            Unreachable(
                f"{address} closed the connection (socket closed); "
                "if it serves TLS, give --tls, or --tls-ca with the CA that signed its certificate"
            )
            if closed
            else None
        )
    if "Hostname Verification Check failed" in details:
        return HandshakeFailed(
            f"the certificate of {address} does not name that host; give the name it "
            "carries with --tls-server-name or LLMROUTER_TLS_SERVER_NAME"
        )
    found = _OPENSSL_REASON.search(details)
    if found is not None:
        return _openssl_failure(address, found[1], found[2])
    if closed:
        remedy = (
            "if it asks for a client certificate, give --tls-cert and --tls-key"
            if tls.cert is None
            else "it may not accept the client certificate given"
        )
        return HandshakeFailed(f"{address} closed the TLS connection (socket closed); {remedy}")
    return None


def _openssl_failure(address: str, reason: str, detail: str | None) -> HandshakeFailed:
    if reason == "CERTIFICATE_VERIFY_FAILED":
        return HandshakeFailed(
            f"the certificate of {address} is not trusted ({detail or 'verify failed'}); "
            "give the CA that signed it with --tls-ca or LLMROUTER_TLS_CA"
        )
    if reason == "WRONG_VERSION_NUMBER":
        return HandshakeFailed(
            f"{address} does not speak TLS (wrong version number); "
            "for a plaintext server leave out --tls and the --tls-* settings"
        )
    return HandshakeFailed(f"the TLS handshake with {address} failed ({reason.lower()})")


def _rich_status(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    """The ``google.rpc.Status`` the server attached, or None (a transport failure)."""
    try:
        # AioRpcError has the code, details and trailing metadata ``from_call`` reads.
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:  # the details do not match the status: treat them as absent
        return None
    return status if isinstance(status, status_pb2.Status) else None


def _transport_cause(details: str) -> str:
    """The last, most specific clause of grpc's connection error, in lower case.

    ``failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1:
    Failed to connect to remote host: Connection refused`` gives ``connection
    refused``; a failed name lookup gives e.g. ``domain name not found``.
    """
    cause = details.rsplit(": ", 1)[-1].strip(" []") or "no reason given"
    if cause[:2].istitle():
        cause = cause[0].lower() + cause[1:]
    return cause


def _retry_remedy(status: status_pb2.Status | None) -> str | None:
    """``retry in N s`` when the server said when (a ``google.rpc.RetryInfo``)."""
    for detail in status.details if status is not None else ():
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return f"retry in {info.retry_delay.ToTimedelta().total_seconds():g} s"
    return None
