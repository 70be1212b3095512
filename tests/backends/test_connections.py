"""An HTTP backend's connections: each read takes little off the socket, and a connection
nobody reads has its receive window shrunk until it is read again.

A loopback server writes a burst and waits; the connection under test is the
one the backends' pool makes (``ConnectionBackend``). What the kernel still
holds for the socket is ``FIONREAD``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import socket
import struct
import termios
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmrouter_server.backends.connections import (
    READ_BYTES,
    WAITING_WINDOW_BYTES,
    Connection,
    ConnectionBackend,
)
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(10)

BURST = 64 * 1024


@pytest.fixture
async def connection() -> AsyncIterator[Connection]:
    """A pool connection to a server that writes ``BURST`` bytes at once, then waits."""
    done = asyncio.Event()

    async def serve(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"x" * BURST)
        await done.wait()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    stream = await ConnectionBackend().connect_tcp("127.0.0.1", port)
    assert isinstance(stream, Connection)
    try:
        yield stream
    finally:
        done.set()
        await stream.aclose()
        server.close()
        with contextlib.suppress(ConnectionError):
            await server.wait_closed()


def _sock(connection: Connection) -> Any:
    """The connection's TCP socket (asyncio's ``TransportSocket``)."""
    sock = connection.get_extra_info("socket")
    assert sock.family == socket.AF_INET
    return sock


def _in_kernel(connection: Connection) -> int:
    """Bytes the kernel holds for the socket, not yet read."""
    raw = fcntl.ioctl(_sock(connection).fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", raw)[0])


def _receive_buffer(connection: Connection) -> int:
    return _sock(connection).getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)


async def test_a_read_takes_at_most_read_bytes_off_the_socket(connection: Connection) -> None:
    await eventually(lambda: _in_kernel(connection) == BURST)

    data = await connection.read(64 * 1024)

    assert 0 < len(data) <= READ_BYTES
    # The transport took no more than the read asked for: the rest waits in the kernel.
    assert _in_kernel(connection) >= BURST - 2 * READ_BYTES


async def test_a_connection_nobody_reads_has_its_window_shrunk_until_read_again(
    connection: Connection,
) -> None:
    await eventually(lambda: _in_kernel(connection) == BURST)
    full = _receive_buffer(connection)
    await connection.read(READ_BYTES)

    await eventually(lambda: connection.shrunk)

    # The kernel keeps twice what setsockopt asks for.
    assert _receive_buffer(connection) <= 2 * WAITING_WINDOW_BYTES < full
    received = len(await connection.read(READ_BYTES))
    assert not connection.shrunk
    assert _receive_buffer(connection) == full
    assert received > 0
