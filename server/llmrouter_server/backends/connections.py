"""The TCP connections of an HTTP backend's pool, for streams that may stop being read.

A connection keeps the system's receive buffer (or ``receive_buffer_bytes``)
while its response is read, so one fast stream runs at full speed. Two things
bound what a stream whose generation waits (paused, or its caller not
reading) keeps, and how far its provider runs ahead:

* Each network read takes at most ``READ_BYTES`` off the socket (asyncio's
  transport takes up to 256 KiB per ``recv`` by default, and httpcore asks for
  64 KiB). What the last read brought in stays in memory while the generation
  waits (h11, httpcore and the SSE reader each hold it); the rest stays in the
  kernel.
* A connection nobody has read from for ``IDLE_SECONDS`` has its receive
  window shrunk to ``WAITING_WINDOW_BYTES`` (``SO_RCVBUF`` and
  ``TCP_WINDOW_CLAMP`` on the live socket), so TCP soon pushes back on the
  provider; the next read gives the window back before it reads.

A read in progress (waiting for the provider's next token) is not idle: only
a connection whose reader stopped asking is shrunk. What the kernel received
before the shrink stays in its buffer (kernel memory, not the server's): a
fixed ``receive_buffer_bytes`` bounds that too, at the cost of speed (a small
window stalls on delayed ACKs, worst on loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore

READ_BYTES = 4 * 1024
"""Most bytes one network read takes off a connection."""

IDLE_SECONDS = 0.1
"""How long a connection goes unread before its receive window is shrunk."""

WAITING_WINDOW_BYTES = 4096
"""The receive buffer and window of a connection nobody reads."""

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)
"""A ``setsockopt`` applied when a connection is made (httpcore's ``SOCKET_OPTION``)."""


class ConnectionBackend(httpcore.AsyncNetworkBackend):
    """httpcore's asyncio network backend, with reads bounded and idle windows shrunk."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        """Wraps ``inner`` (httpcore's AnyIO backend by default)."""
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connects as the inner backend does; returns the bounded connection."""
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return Connection(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connects as the inner backend does; returns the bounded connection."""
        stream = await self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )
        return Connection(stream)

    async def sleep(self, seconds: float) -> None:
        """Sleeps as the inner backend does."""
        await self._inner.sleep(seconds)


_UNKNOWN = object()
"""A connection's socket before it was first asked for."""


class Connection(httpcore.AsyncNetworkStream):
    """One connection: bounded reads, and a receive window shrunk while nobody reads.

    Attributes:
        shrunk: True while the receive window is shrunk.
    """

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._loop = asyncio.get_running_loop()
        self._reading = False
        self._last_read = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._saved: tuple[int, int] | None = None
        self._sock: Any = _UNKNOWN
        _bound_reads(stream)

    @property
    def shrunk(self) -> bool:
        """True while the receive window is shrunk (nobody has read for a while)."""
        return self._saved is not None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        """Reads at most ``READ_BYTES``, with the full window while it reads."""
        self._reading = True
        if self._saved is not None:
            self._widen()
        try:
            return await self._stream.read(min(max_bytes, READ_BYTES), timeout)
        finally:
            self._reading = False
            self._last_read = self._loop.time()
            if self._timer is None and not self._closed:
                self._timer = self._loop.call_at(self._last_read + IDLE_SECONDS, self._idle)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Writes as the inner stream does."""
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        """Closes the connection."""
        self._stop()
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
    ) -> httpcore.AsyncNetworkStream:
        """Starts TLS over the connection; the TLS stream is bounded the same way."""
        self._stop()
        return Connection(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        """What the inner stream says (``socket``, ``ssl_object``, ``is_readable``...).

        The socket is looked up once: httpcore's pool asks every idle connection
        for it on each request it places, and AnyIO builds a dict of all its
        attributes for every ask.
        """
        if info != "socket":
            return self._stream.get_extra_info(info)
        if self._sock is _UNKNOWN:
            self._sock = self._stream.get_extra_info("socket")
        return self._sock

    def _stop(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _idle(self) -> None:
        self._timer = None
        if self._reading or self._closed or self._saved is not None:
            return
        due = self._last_read + IDLE_SECONDS
        if self._loop.time() < due:  # read again since the timer was set
            self._timer = self._loop.call_at(due, self._idle)
            return
        self._shrink()

    def _shrink(self) -> None:
        sock = self._socket()
        if sock is None:
            return
        with contextlib.suppress(OSError):  # closed under us: nothing to shrink
            saved = (
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_WINDOW_CLAMP),
            )
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, WAITING_WINDOW_BYTES)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_WINDOW_CLAMP, WAITING_WINDOW_BYTES)
            self._saved = saved

    def _widen(self) -> None:
        saved, self._saved = self._saved, None
        sock = self._socket()
        if saved is None or sock is None:
            return
        buffer, clamp = saved
        with contextlib.suppress(OSError):
            # getsockopt reports the doubled size the kernel keeps for a setsockopt.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, max(buffer // 2, 1))
            if clamp:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_WINDOW_CLAMP, clamp)

    def _socket(self) -> Any:
        """The TCP socket (asyncio's ``TransportSocket`` under anyio), or None."""
        sock = self.get_extra_info("socket")
        if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
            return None
        return sock


def _bound_reads(stream: httpcore.AsyncNetworkStream) -> None:
    """Makes the asyncio transport under httpcore's AnyIO stream take at most
    ``READ_BYTES`` per ``recv``: it takes 256 KiB by default, and what it takes
    waits in userspace until read. Nothing changes under another transport."""
    inner = getattr(stream, "_stream", None)  # httpcore's AnyIOStream: the anyio stream
    inner = getattr(inner, "transport_stream", inner)  # under TLS, the TCP stream
    transport = getattr(inner, "_transport", None)  # anyio's asyncio SocketStream
    if isinstance(transport, asyncio.Transport) and isinstance(
        getattr(transport, "max_size", None), int
    ):
        transport.max_size = READ_BYTES  # type: ignore[attr-defined]
