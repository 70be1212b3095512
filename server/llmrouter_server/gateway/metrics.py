"""The gateway's own metrics: open sockets and refused upgrades.

What runs over a socket is a generation like any other and is counted by the
generation metrics (``telemetry.metrics``); these say how the port itself fares.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from llmrouter_server.gateway.server import Gateway

REFUSALS = ("origin", "connections", "key")
"""Why an upgrade is refused: a disallowed Origin (403), ``gateway.max_connections``
(503), a bad key (401)."""


def observe(meter: Meter, gateway: Gateway) -> None:
    """Registers the gateway's instruments on ``meter``; they read ``gateway`` when collected."""

    def sockets(_: CallbackOptions) -> Iterable[Observation]:
        yield Observation(gateway.sockets)

    def refused(_: CallbackOptions) -> Iterable[Observation]:
        for reason in REFUSALS:
            yield Observation(gateway.refused[reason], {"reason": reason})

    meter.create_observable_gauge(
        "llmrouter.gateway.sockets",
        callbacks=[sockets],
        description="WebSocket connections open on the gateway.",
    )
    meter.create_observable_counter(
        "llmrouter.gateway.refused_upgrades",
        callbacks=[refused],
        description="WebSocket upgrades the gateway refused {reason: origin, connections, key}.",
    )
