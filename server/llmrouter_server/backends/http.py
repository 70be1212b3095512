"""What the HTTP provider backends share: the API key, the connection pool, the
streaming POST, and one classification of everything that can go wrong on the
wire (``http_errors``).

A provider module (``openai``, ``anthropic``) builds its payload, opens
``EventStreamClient.post`` and reads ``ServerSentEvent`` objects; it never
sees an httpx exception. Every failure leaves this module as a
``BackendError`` worded by the router:

- refused or unreachable: ``BackendConnectError`` ("could not connect to ...")
- no connection, or no data, in time: ``BackendTimeout``
- an error status: ``BackendStatusError`` with the provider's own message and
  ``Retry-After`` in seconds
- not an event stream, a broken body or a malformed event:
  ``BackendProtocolError``

The response body is read only as the caller pulls events, so a caller that
stops pulling leaves bytes in the socket and TCP pushes back on the provider;
leaving the ``post`` context closes the connection.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import aclosing, asynccontextmanager
from typing import Any

import httpcore
import httpx

from llmrouter_server.backends.connections import ConnectionBackend
from llmrouter_server.backends.http_errors import (
    HTTPX_ERRORS,
    classify,
    error_body,
    redacted,
    secret_values,
    status_error,
)
from llmrouter_server.backends.sse import ServerSentEvent, read_batches
from llmrouter_server.config import HTTPBackendConfig
from llmrouter_server.errors import (
    BackendProtocolError,
    ConfigError,
)


def api_key(env: str | None) -> str | None:
    """The API key in the environment variable named ``env``, if set and not empty."""
    return (os.environ.get(env) or None) if env else None


def configured_api_key(name: str, config: HTTPBackendConfig) -> str | None:
    """The backend's API key: ``api_key_file``'s content if set, else ``api_key_env``'s.

    The file's trailing line break is dropped. Messages name the file, never
    what it holds.

    Args:
        name: The configured backend name.
        config: The backend's configuration.

    Raises:
        ConfigError: The file cannot be read, is empty or holds more than one
            line; names ``backends.NAME.api_key_file``.
    """
    path = config.api_key_file
    if path is None:
        return api_key(config.api_key_env)
    where = f"backends.{name}.api_key_file"
    try:
        key = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {path} is not UTF-8 text") from None
    if not key:
        raise ConfigError(f"{where}: {path} is empty")
    if "\n" in key or "\r" in key:
        raise ConfigError(f"{where}: {path} holds more than one line")
    return key


def build_client(
    config: HTTPBackendConfig,
    headers: Mapping[str, str],
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """Builds the connection pool of one backend.

    Args:
        config: Where the provider is, how long to wait for it, how many
            connections to hold and how large their receive buffers are.
        headers: Headers sent with every request (credentials, versions).
        transport: An httpx transport to use instead of the network (tests).

    Returns:
        A client with ``config.base_url`` as its base URL.
    """
    return httpx.AsyncClient(
        base_url=config.base_url,
        headers=dict(headers),
        timeout=httpx.Timeout(config.read_timeout_seconds, connect=config.connect_timeout_seconds),
        transport=transport or _transport(config),
    )


def _transport(config: HTTPBackendConfig) -> httpx.AsyncHTTPTransport:
    size = config.receive_buffer_bytes
    # The options apply once the connection is up: the buffer bounds what the
    # kernel holds for us, the clamp bounds the window the upstream may fill.
    options = (
        [
            (socket.SOL_SOCKET, socket.SO_RCVBUF, size),
            (socket.IPPROTO_TCP, socket.TCP_WINDOW_CLAMP, size),
        ]
        if size
        else []
    )
    limits = httpx.Limits(max_connections=config.max_concurrency)
    transport = httpx.AsyncHTTPTransport(limits=limits)
    # httpx takes no network backend: its pool is rebuilt with ours, which bounds
    # each read and shrinks the window of a connection nobody reads (connections.py).
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        socket_options=options,
        network_backend=ConnectionBackend(),
    )
    return transport


class EventStreamClient:
    """One backend's connection pool and its streaming POSTs."""

    def __init__(
        self,
        name: str,
        config: HTTPBackendConfig,
        headers: Mapping[str, str],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Builds the pool (see ``build_client``).

        Args:
            name: The configured backend name, for errors.
            config: The backend's configuration.
            headers: Headers sent with every request.
            transport: An httpx transport to use instead of the network (tests).
        """
        self.name = name
        self._config = config
        self._client = build_client(config, headers, transport)
        self._secrets = secret_values(headers)

    @asynccontextmanager
    async def post(
        self,
        path: str,
        payload: Mapping[str, Any],
        trace_headers: Iterable[tuple[str, str]] = (),
    ) -> AsyncIterator[AsyncIterator[list[ServerSentEvent]]]:
        """POSTs ``payload`` as JSON to ``path`` and yields the response's events.

        Args:
            path: The path under the base URL, e.g. ``messages``.
            payload: The JSON body.
            trace_headers: The request's trace context headers (``traceparent``,
                ``tracestate``), sent with this request only.

        Yields:
            The events, a list per network read (``sse.read_batches``).

        Raises:
            BackendError: A subclass saying what went wrong (see the module).
        """
        answered = False
        headers = {**dict(trace_headers), "Accept": "text/event-stream"}
        try:
            async with self._client.stream("POST", path, json=payload, headers=headers) as response:
                answered = True
                await self._check(response)
                # read_batches is an async generator: closing it here, not when it
                # is collected, drops its buffer with the connection.
                batches = read_batches(response.aiter_bytes())
                async with aclosing(batches):
                    yield batches
        except HTTPX_ERRORS as exc:
            raise classify(self.name, self._config, exc, answered=answered) from exc

    async def aclose(self) -> None:
        """Closes the pool."""
        await self._client.aclose()

    async def _check(self, response: httpx.Response) -> None:
        if response.status_code >= 400:
            body = redacted(await error_body(response), self._secrets)
            raise status_error(self.name, response.status_code, body, response.headers)
        kind = response.headers.get("content-type", "").partition(";")[0].strip().lower()
        if kind != "text/event-stream":
            raise BackendProtocolError(
                self.name, f"answered with content-type {kind!r}, not an event stream"
            )
