"""Configuration of the WebSocket gateway for browsers (``gateway``).

Part of the one configuration (``config.py`` holds the whole and re-exports
this section).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from llmrouter_server.config_base import Section as _Section


class GatewayConfig(_Section):
    """The HTTP port carrying the contract over WebSocket, and the chat page.

    Off unless ``port`` is set. It serves the same generations as the gRPC
    port, with the same API keys (``auth``) and limits.
    """

    port: int | None = Field(None, ge=0, le=65535)
    """TCP port; unset: no gateway; 0 picks a free one."""
    host: str | None = None
    """Interface to bind; unset: the gRPC port's ``server.host``."""
    allowed_origins: list[str] = Field(default_factory=list)
    """Origins (``https://app.example.com``) whose pages may open a socket, besides
    the gateway's own origin; ``"*"`` allows any. A request without an Origin
    header (not a browser) is allowed; auth still applies."""
    max_connections: int = Field(1000, gt=0)
    """Open sockets at most; the next upgrade is refused with HTTP 503."""
    max_calls_per_socket: int = Field(100, gt=0)
    """Open calls on one socket at most; the next gets RESOURCE_EXHAUSTED."""
    max_frame_bytes: int = Field(1024 * 1024, gt=0)
    """Largest frame from a client; a larger one ends its call RESOURCE_EXHAUSTED,
    and one over four times this closes the socket (1009)."""
    heartbeat_seconds: float = Field(20.0, gt=0)
    """A WebSocket ping every this often; a socket that does not answer within
    half of it is closed, and its calls end as if the client had gone."""
    page_dir: Path | None = None
    """The chat page's built files, served at ``/``; unset: the page built into
    the installed package (``make web``), if any."""
