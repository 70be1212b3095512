"""How a client reaches its server: TLS settings, the API key on every call, the channel.

The key travels as ``authorization: Bearer <key>`` metadata, added by a client
interceptor rather than by call credentials: grpc sends call credentials over
TLS only, and a server on loopback may well be plaintext.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

_HEADER = "authorization"
"""The metadata key the server reads the API key from."""
_NAME_OVERRIDE = "grpc.ssl_target_name_override"
"""The channel option naming the host the server's certificate must carry."""


@dataclass(frozen=True)
class TLS:
    """TLS for the channel; with ``cert`` and ``key``, mutual TLS.

    The fields hold PEM data; ``TLS.from_files`` reads them from files.
    ``TLS()`` trusts the system's root certificates and presents no certificate.

    Raises:
        ValueError: Only one of ``cert`` and ``key`` is given.
    """

    ca: bytes | None = None
    """The root certificates the server's certificate must chain to; None trusts
    the system's roots."""
    cert: bytes | None = None
    """This client's certificate chain, for a server that asks for one (mutual TLS)."""
    key: bytes | None = field(default=None, repr=False)
    """The private key of ``cert``; ``repr`` leaves it out."""
    server_name: str | None = None
    """The name to expect in the server's certificate (and to send as SNI),
    instead of the host in the address."""

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ValueError("TLS needs both cert and key (mutual TLS), or neither")

    @classmethod
    def from_files(
        cls,
        ca: str | os.PathLike[str] | None = None,
        cert: str | os.PathLike[str] | None = None,
        key: str | os.PathLike[str] | None = None,
        server_name: str | None = None,
    ) -> TLS:
        """Reads the PEM files given; a missing one raises ``OSError``."""
        return cls(_read(ca), _read(cert), _read(key), server_name)


def open_channel(
    address: str, *, api_key: str | None = None, tls: TLS | None = None
) -> grpc.aio.Channel:
    """Opens a channel to ``address`` as ``Client`` does.

    Use it for the generated stubs of other services on the same server, such as
    ``grpc.health.v1.Health``; ``close`` it when done.

    Args:
        address: The server's ``host:port``, or a gRPC target name.
        api_key: Sent as ``authorization: Bearer <key>`` metadata on every call,
            over TLS and over plaintext alike.
        tls: TLS settings; None makes a plaintext channel.

    Raises:
        ValueError: The key is empty or has characters other than printable
            ASCII (a trailing newline from a file, say); the message leaves the
            key out.
    """
    # The grpc stubs leave the interceptor type for the caller to cast.
    interceptors: list[Any] = _interceptors(api_key)
    if tls is None:
        return grpc.aio.insecure_channel(address, interceptors=interceptors)
    credentials = grpc.ssl_channel_credentials(tls.ca, tls.key, tls.cert)
    options = [] if tls.server_name is None else [(_NAME_OVERRIDE, tls.server_name)]
    return grpc.aio.secure_channel(address, credentials, options, interceptors=interceptors)


class _BearerKey:
    """Adds ``authorization: Bearer <key>`` to the metadata of a call.

    One subclass per call shape: grpc.aio files an interceptor under the first
    shape it implements only. The grpc stubs type ``continuation`` as returning
    the call; it returns an awaitable of it, hence the ``Any``.
    """

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(...)"

    def _with_key(self, details: Any) -> grpc.aio.ClientCallDetails:
        # A copy: a caller may pass the same Metadata object to several calls.
        metadata = grpc.aio.Metadata(*(details.metadata or ()), (_HEADER, self._value))
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


# The interceptor classes are generic in the grpc stubs only.
class _UnaryUnary(_BearerKey, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._with_key(details), request)


class _UnaryStream(_BearerKey, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._with_key(details), request)


class _StreamUnary(_BearerKey, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._with_key(details), requests)


class _StreamStream(_BearerKey, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._with_key(details), requests)


def _interceptors(api_key: str | None) -> list[_BearerKey]:
    """The four interceptors that send ``api_key``, or none without a key."""
    if api_key is None:
        return []
    if not api_key or not all("!" <= char <= "~" for char in api_key):
        raise ValueError("the API key must be printable ASCII without spaces or newlines")
    value = f"Bearer {api_key}"
    return [kind(value) for kind in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)]


def _read(path: str | os.PathLike[str] | None) -> bytes | None:
    return None if path is None else Path(path).read_bytes()
