"""Real HTTP upstreams for backend tests: llama-cpp-python's OpenAI-compatible
server in a subprocess, and a TCP proxy that shows what the router does to
the connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import IO

import httpx

from llmrouter_server.backends.llama_decode import bundled_model_path

MODEL_ALIAS = "smollm2"


def free_port() -> int:
    """A loopback port that was free a moment ago (for servers that cannot bind port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def llama_cpp_server() -> Iterator[str]:
    """Runs ``python -m llama_cpp.server`` on loopback; yields its ``/v1`` base URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(bundled_model_path()),
        "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        "--verbose", "False",
    ]  # fmt: skip
    # The log goes to a file: a pipe nobody reads would block the server once full.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        base_url = f"http://127.0.0.1:{port}/v1"
        try:
            _wait_until_up(base_url, process, log)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(base_url: str, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"llama_cpp.server exited: {log.read().decode()[-2000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base_url}/models", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("llama_cpp.server did not come up in 60 s")


class Proxy:
    """A loopback TCP proxy in front of an upstream, counting what flows.

    Attributes:
        upstream_bytes: Bytes relayed from the upstream to the client.
        connections: Connections accepted so far.
        client_closed: Set when a client (the router) closed its connection.
    """

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self.upstream_bytes = 0
        self.connections = 0
        self.client_closed = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Starts listening; returns the port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def drop(self) -> None:
        """Closes every relayed connection, on both sides; new ones still get through."""
        for task in self._tasks:
            task.cancel()

    async def stop(self) -> None:
        """Stops listening and drops every relay."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self._upstream_port)
        up = asyncio.ensure_future(self._pipe(up_r, client_w, count=True))
        down = asyncio.ensure_future(self._pipe(client_r, up_w, count=False))
        self._tasks.update({up, down})
        try:
            await down  # ends when the client (the router) closes its connection
            self.client_closed.set()
        finally:
            up.cancel()
            for writer in (up_w, client_w):
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, count: bool
    ) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if count:
                    self.upstream_bytes += len(data)
                writer.write(data)
                await writer.drain()


class SSEUpstream:
    """A minimal OpenAI-compatible streaming server on a real loopback socket.

    Each request gets ``tokens`` SSE chunk events (" t0", " t1", ...) written
    as fast as the socket takes them, then ``[DONE]``. It records the request
    bodies, how many events it managed to write, and closed connections.

    Attributes:
        bodies: The JSON bodies received, in order.
        sent: Events written to the socket over all requests.
        closed: Connections that ended, by the client or after ``[DONE]``.
    """

    def __init__(self, tokens: int, delay: float = 0.0) -> None:
        self.tokens = tokens
        self.delay = delay
        self.bodies: list[dict[str, object]] = []
        self.sent = 0
        self.closed = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        """Starts listening; returns the ``/v1`` base URL."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return f"http://127.0.0.1:{self.port}/v1"

    async def stop(self) -> None:
        """Stops listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        try:
            self.bodies.append(await _read_request(reader))
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
            )
            skip = len(_continuation(self.bodies[-1]).split())
            for index in range(skip, self.tokens):
                delta = json.dumps({"choices": [{"delta": {"content": f" t{index}"}}]})
                writer.write(f"data: {delta}\n\n".encode())
                await writer.drain()
                self.sent += 1
                if self.delay:
                    await asyncio.sleep(self.delay)
            writer.write(b'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\n')
            writer.write(b"data: [DONE]\n\n")
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            self.closed += 1
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> dict[str, object]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.decode().split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    body: dict[str, object] = json.loads(await reader.readexactly(length))
    return body


def _continuation(body: dict[str, object]) -> str:
    messages = body.get("messages")
    assert isinstance(messages, list)
    last = messages[-1]
    return str(last["content"]) if last["role"] == "assistant" else ""
