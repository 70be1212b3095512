"""What the HTTP provider backends share: the API key, the connection pool, the
streaming POST, and one classification of everything that can go wrong on the wire.

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

import json
import math
import os
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import aclosing, asynccontextmanager
from email.utils import parsedate_to_datetime
from typing import Any

import httpcore
import httpx
import jiter

from llmrouter_server.backends.connections import ConnectionBackend
from llmrouter_server.backends.sse import ServerSentEvent, read_batches
from llmrouter_server.config import HTTPBackendConfig
from llmrouter_server.errors import (
    BackendConnectError,
    BackendError,
    BackendProtocolError,
    BackendStatusError,
    BackendTimeout,
    ConfigError,
)

ENDED_EARLY = "upstream closed the stream before it ended"
"""The detail of a stream that stopped before the provider's end marker."""

_ERROR_BODY_LIMIT = 64 * 1024
"""Bytes of an error response read for its message; the rest is dropped."""

_ERROR_TEXT_LIMIT = 500
"""Characters of an error message kept."""

_EVENT_TEXT_LIMIT = 200
"""Characters of a malformed event quoted in the error."""

_HTTPX_ERRORS = (httpx.HTTPError, httpx.StreamError, httpx.InvalidURL)
"""Every exception httpx raises."""


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
        self._secrets = _secrets(headers)

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
        except _HTTPX_ERRORS as exc:
            raise classify(self.name, self._config, exc, answered=answered) from exc

    async def aclose(self) -> None:
        """Closes the pool."""
        await self._client.aclose()

    async def _check(self, response: httpx.Response) -> None:
        if response.status_code >= 400:
            body = _redacted(await _error_body(response), self._secrets)
            raise status_error(self.name, response.status_code, body, response.headers)
        kind = response.headers.get("content-type", "").partition(";")[0].strip().lower()
        if kind != "text/event-stream":
            raise BackendProtocolError(
                self.name, f"answered with content-type {kind!r}, not an event stream"
            )


_SECRET_HEADERS = ("authorization", "x-api-key")
"""Request headers that carry the backend's credentials."""


def _secrets(headers: Mapping[str, str]) -> tuple[str, ...]:
    """The credentials in a backend's headers (a bearer token without its scheme)."""
    values = (v for k, v in headers.items() if k.lower() in _SECRET_HEADERS)
    secrets = (value.removeprefix("Bearer ").strip() for value in values)
    return tuple(secret for secret in secrets if secret)


def _redacted(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every credential replaced: some providers echo the key they refuse."""
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


async def _error_body(response: httpx.Response) -> str:
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= _ERROR_BODY_LIMIT:
                break
    except _HTTPX_ERRORS:
        pass  # the status says what happened; keep what arrived of the body
    return body.decode(errors="replace")


def classify(
    backend: str, config: HTTPBackendConfig, exc: Exception, *, answered: bool
) -> BackendError:
    """The router's error for an httpx exception, worded without httpx's text.

    Args:
        backend: The configured backend name.
        config: The backend's configuration (its URL and timeouts).
        exc: What httpx raised.
        answered: True once the response's status line had arrived.

    Returns:
        The error to raise in its place.
    """
    if isinstance(exc, httpx.TimeoutException):
        return BackendTimeout(backend, _timeout_detail(exc, config))
    if isinstance(exc, httpx.ConnectError):
        return BackendConnectError(
            backend, f"could not connect to {config.base_url}: {_connect_reason(exc)}"
        )
    if isinstance(exc, httpx.DecodingError):
        return BackendProtocolError(backend, "the response body could not be decoded")
    if answered:
        return BackendProtocolError(backend, ENDED_EARLY)
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        return BackendConnectError(backend, "upstream closed the connection before answering")
    return BackendConnectError(backend, f"the request to {config.base_url} failed")


def _timeout_detail(exc: httpx.TimeoutException, config: HTTPBackendConfig) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return f"no connection within {config.connect_timeout_seconds} s"
    if isinstance(exc, httpx.WriteTimeout):
        return f"request not sent within {config.read_timeout_seconds} s"
    if isinstance(exc, httpx.PoolTimeout):
        return f"no free connection within {config.read_timeout_seconds} s"
    return f"no data for {config.read_timeout_seconds} s"


def _connect_reason(exc: BaseException) -> str:
    """Why a connection failed, from the OS error underneath httpx's."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "host name not found"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "its TLS certificate is not trusted"
        if isinstance(cause, ssl.SSLError):
            return "TLS handshake failed"
        if isinstance(cause, OSError) and isinstance(cause.errno, int) and cause.errno > 0:
            return os.strerror(cause.errno).lower()
        cause = cause.__cause__ or cause.__context__
    return "unreachable"


def status_error(
    backend: str, status: int, body: str, headers: Mapping[str, str]
) -> BackendStatusError:
    """The error for an HTTP error status.

    Args:
        backend: The configured backend name.
        status: The HTTP status code.
        body: The response body (or its start).
        headers: The response headers, for ``Retry-After``.

    Returns:
        The error, with the provider's message (or the status's reason phrase
        when the body is empty).
    """
    message = error_message(body).strip() or httpx.codes.get_reason_phrase(status) or "no message"
    return BackendStatusError(
        backend, status, message, retry_after=retry_after_seconds(headers.get("retry-after"))
    )


def error_message(body: str) -> str:
    """The provider's error message in a JSON error body, else the body's start.

    Understands OpenAI's ``{"error": {"message": ...}}``, Anthropic's
    ``{"type": "error", "error": {"type": ..., "message": ...}}`` and the
    ``{"error": "..."}`` some compatible servers send.
    """
    try:
        message = error_text(json.loads(body))
    except json.JSONDecodeError:
        message = None
    return (message or body)[:_ERROR_TEXT_LIMIT]


def error_text(payload: object) -> str | None:
    """The message of a decoded error object (see ``error_message``), if it has one."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return str(error)[:_ERROR_TEXT_LIMIT] if error else None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date.

    Args:
        value: The header, if present.
        now: The current time (seconds since the epoch); defaults to the clock.

    Returns:
        Seconds, never negative; None when the header is absent or unreadable.
    """
    if not value:
        return None
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _until(value, time.time() if now is None else now)
    return max(0.0, seconds) if seconds is not None and math.isfinite(seconds) else None


def _until(date: str, now: float) -> float | None:
    try:
        return parsedate_to_datetime(date).timestamp() - now
    except (TypeError, ValueError, IndexError):
        return None


def parse_event(backend: str, data: str) -> dict[str, Any]:
    """Decodes one event's JSON data, which must be an object.

    Raises:
        BackendProtocolError: The data is not a JSON object.
    """
    try:
        payload = jiter.from_json(data.encode())  # ~5x faster than json.loads per event
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise malformed_event(backend, data)
    return payload


def malformed_event(backend: str, data: str) -> BackendProtocolError:
    """The error for an event the provider's protocol does not allow."""
    return BackendProtocolError(backend, f"malformed stream event: {data[:_EVENT_TEXT_LIMIT]!r}")


def mid_stream_error(backend: str, message: str, *, retryable: bool) -> BackendError:
    """The error for an error the provider reported inside a stream."""
    return BackendError(
        backend, f"upstream reported an error mid-stream: {message}", retryable=retryable
    )


def ended_early(backend: str) -> BackendProtocolError:
    """The error for a stream whose body ended before the provider's end marker."""
    return BackendProtocolError(backend, ENDED_EARLY)
