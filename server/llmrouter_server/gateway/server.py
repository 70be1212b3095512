"""The gateway's HTTP port: the WebSocket endpoint ``/v1/ws`` and the chat page at ``/``.

aiohttp runs in the server's event loop beside grpc.aio and calls the same
domain objects. An upgrade is refused before any socket exists when its
origin is not allowed (403), its key is not valid (401) or
``gateway.max_connections`` sockets are open (503).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from pathlib import Path

from aiohttp import WSCloseCode, web

from llmrouter_server.auth.keys import Authenticator
from llmrouter_server.config_gateway import GatewayConfig
from llmrouter_server.errors import Unauthenticated
from llmrouter_server.gateway.access import SUBPROTOCOL, Credentials, origin_allowed
from llmrouter_server.gateway.methods import Method
from llmrouter_server.gateway.socket import Socket

logger = logging.getLogger(__name__)

PATH = "/v1/ws"
"""The WebSocket endpoint."""

PAGE_DIR = Path(__file__).parent / "page"
"""Where ``make web`` builds the chat page into the package."""

WRITER_LIMIT = 16 * 1024
"""Bytes written to a socket before the writer checks whether the peer keeps up; a
smaller value than aiohttp's 256 KiB keeps a stalled reader's backlog small."""

CLOSE_SECONDS = 1.0
"""How long a closing socket waits for the peer's close frame."""

_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}


class Gateway:
    """The gateway of one server process."""

    def __init__(
        self,
        config: GatewayConfig,
        host: str,
        methods: dict[str, Method],
        authenticator: Authenticator | None,
    ) -> None:
        self._config = config
        self._host = host
        self._methods = methods
        self._credentials = Credentials(authenticator)
        self._sockets: dict[web.WebSocketResponse, Socket] = {}
        self._page = config.page_dir or PAGE_DIR
        self._runner: web.AppRunner | None = None
        self.port = 0
        """The bound port, once started."""
        self.refused: Counter[str] = Counter()
        """Upgrades refused so far, by reason: ``origin``, ``connections``, ``key``."""

    @property
    def sockets(self) -> int:
        """The sockets open now."""
        return len(self._sockets)

    def application(self) -> web.Application:
        """The routes: the endpoint, and the page's files (looked up per request)."""
        app = web.Application()
        app.router.add_get(PATH, self._upgrade)
        app.router.add_get("/", self._index)
        app.router.add_get("/assets/{name}", self._asset)
        return app

    async def start(self) -> None:
        """Binds the port and serves."""
        self._runner = web.AppRunner(self.application(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._config.port, reuse_port=False)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self, flush: float) -> None:
        """Closes every socket (1001, going away) after up to ``flush`` seconds for the
        calls on them to end, then the port."""
        if self._runner is None:
            return
        for site in self._runner.sites:
            await site.stop()  # no new sockets
        if self._sockets:
            idle = [asyncio.ensure_future(socket.idle()) for socket in self._sockets.values()]
            await asyncio.wait(idle, timeout=flush)
            for waiter in idle:
                waiter.cancel()
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
        await self._runner.cleanup()

    async def _upgrade(self, request: web.Request) -> web.StreamResponse:
        if not origin_allowed(request, self._config.allowed_origins):
            self.refused["origin"] += 1
            raise web.HTTPForbidden(
                text=f"origin {request.headers['Origin']} is not in gateway.allowed_origins\n"
            )
        if len(self._sockets) >= self._config.max_connections:
            self.refused["connections"] += 1
            raise web.HTTPServiceUnavailable(
                text=f"{self._config.max_connections} sockets are open (gateway.max_connections)\n"
            )
        try:
            principal = self._credentials.at_upgrade(request)
        except Unauthenticated as error:
            self.refused["key"] += 1
            raise web.HTTPUnauthorized(
                text=f"{error.message}\n", headers={"WWW-Authenticate": "Bearer"}
            ) from None
        ws = web.WebSocketResponse(
            protocols=(SUBPROTOCOL,),
            heartbeat=self._config.heartbeat_seconds,
            max_msg_size=4 * self._config.max_frame_bytes,
            compress=False,
            writer_limit=WRITER_LIMIT,
            timeout=CLOSE_SECONDS,
        )
        await ws.prepare(request)
        socket = Socket(
            ws, self._methods, self._config, principal, self._credentials.from_authorization
        )
        self._sockets[ws] = socket
        try:
            await socket.serve()
        finally:
            del self._sockets[ws]
            await ws.close()
        return ws

    async def _index(self, _request: web.Request) -> web.StreamResponse:
        index = self._page / "index.html"
        if not index.is_file():
            return web.Response(
                status=404,
                text="The chat page is not built: run `make web`, or set gateway.page_dir.\n",
            )
        return web.FileResponse(index, headers=_PAGE_HEADERS)

    async def _asset(self, request: web.Request) -> web.StreamResponse:
        # Looked up on each request, so a page built after the server started is served.
        folder = self._page / "assets"
        name = request.match_info["name"]
        path = folder / name
        if name.startswith(".") or path.parent != folder or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"X-Content-Type-Options": "nosniff"})
