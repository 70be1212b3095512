"""Who may open a socket: the page's origin and the caller's credentials.

Browsers cannot set headers on a WebSocket, so a key travels as a second
offered subprotocol, ``llmrouter.bearer.<base64url key>`` (never echoed
back); other clients may send ``Authorization: Bearer <key>``; a socket
opened with neither starts with an ``{"auth": ...}`` frame (``socket``). The
keys, tenants and roles are the gRPC port's (``auth``).
"""

from __future__ import annotations

import base64
import binascii

from aiohttp import web
from yarl import URL

from llmrouter_server.auth.keys import Authenticator
from llmrouter_server.auth.principal import OPEN, Principal
from llmrouter_server.errors import Unauthenticated

SUBPROTOCOL = "llmrouter.v1"
"""The subprotocol the gateway speaks; clients offer it and the server selects it."""

BEARER_SUBPROTOCOL = "llmrouter.bearer."
"""The prefix of the subprotocol that carries a key."""

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def origin_allowed(request: web.BaseRequest, allowed: list[str]) -> bool:
    """True for a non-browser request (no Origin), the gateway's own origin, or a listed one."""
    origin = request.headers.get("Origin")
    if origin is None or "*" in allowed or origin in allowed:
        return True
    url = URL(origin)
    if url.host is None:
        return False
    host = URL(f"{request.scheme}://{request.host}")
    return (url.host.lower(), _port(url)) == ((host.host or "").lower(), _port(host))


def _port(url: URL) -> int | None:
    return url.explicit_port or _DEFAULT_PORTS.get(url.scheme)


class Credentials:
    """Turns what an upgrade or an auth frame carries into the caller's principal."""

    def __init__(self, authenticator: Authenticator | None) -> None:
        """Without an authenticator (no ``auth`` section) every caller is ``OPEN``."""
        self._authenticator = authenticator

    def at_upgrade(self, request: web.BaseRequest) -> Principal | None:
        """The caller named by the upgrade request; None when it names none and
        the server needs one (the first frame must then carry it).

        Raises:
            Unauthenticated: The request carries a key the server does not know.
        """
        if self._authenticator is None:
            return OPEN
        for offered in request.headers.getall("Sec-WebSocket-Protocol", ()):
            for protocol in offered.split(","):
                protocol = protocol.strip()
                if protocol.startswith(BEARER_SUBPROTOCOL):
                    return self._authenticator.by_key(
                        _unpadded(protocol[len(BEARER_SUBPROTOCOL) :])
                    )
        header = request.headers.get("Authorization")
        if header is not None:
            return self.from_authorization(header)
        return None

    def from_authorization(self, value: str) -> Principal:
        """The caller of ``Bearer <key>``.

        Raises:
            Unauthenticated: Not ``Bearer <key>``, or a key the server does not know.
        """
        if self._authenticator is None:
            return OPEN
        return self._authenticator.by_authorization(value, "authorization")


def _unpadded(encoded: str) -> str:
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated(
            f"the {BEARER_SUBPROTOCOL}<key> subprotocol must carry the key as base64url"
        ) from None
