"""The ``/metrics`` endpoint: Prometheus text over HTTP, from one server's registry.

prometheus_client's WSGI app over its threading WSGI server, in a daemon
thread of its own, like ``prometheus_client.start_http_server``, but on a
registry of the server's own (several servers in one process, as in tests,
do not share prometheus_client's global ``REGISTRY``), polling for shutdown
every ``POLL_SECONDS`` so that ``stop`` returns promptly, and without a log
line per scrape. Each scrape collects the OpenTelemetry metrics on that thread.
"""

from __future__ import annotations

import socket
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

POLL_SECONDS = 0.05
"""How often the serving thread looks for a shutdown request."""


class _QuietHandler(WSGIRequestHandler):
    """Writes no access log line per scrape."""

    def log_message(self, format: str, *args: object) -> None:
        """Logs nothing."""


class MetricsServer:
    """Serves one registry as Prometheus text on ``host:port``."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        """Binds nothing yet; ``start`` does.

        Args:
            registry: What to serve.
            host: The interface to bind (the gRPC server's host).
            port: The TCP port; 0 picks a free one (see ``port``).
        """
        self._registry = registry
        self._host = host
        self._port = port
        self._server: ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port once started, else the configured one."""
        return self._server.server_port if self._server is not None else self._port

    def start(self) -> None:
        """Binds the port and serves from a daemon thread.

        Raises:
            OSError: The port cannot be bound.
        """
        family = socket.getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM)[0][0]
        server_class = type("_Server", (ThreadingWSGIServer,), {"address_family": family})
        self._server = make_server(
            self._host, self._port, make_wsgi_app(self._registry), server_class, _QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_SECONDS},
            name=f"llmrouter-metrics:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stops serving and closes the port (blocks up to ``POLL_SECONDS`` or a scrape)."""
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = None
        self._thread = None
