"""The gateway's own metrics: the sockets open and the upgrades refused, by reason."""

from __future__ import annotations

import functools
from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from llmrouter_server.telemetry.setup import Telemetry
from tests.gateway.helpers import WAIT_SECONDS, gateway_config, socket
from tests.gateway.test_access import AUTH, KEYS, refused
from tests.helpers import eventually, serving
from tests.security.scripted import HeldBackend, backends


def values(reader: InMemoryMetricReader, name: str) -> dict[frozenset[tuple[str, Any]], Any]:
    """Each series of ``name`` as collected now, by label set."""
    data = reader.get_metrics_data()
    assert data is not None
    return {
        frozenset(point.attributes.items()): point.value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
        if isinstance(point, NumberDataPoint)
    }


async def test_open_sockets_and_refused_upgrades_are_counted(held: HeldBackend) -> None:
    reader = InMemoryMetricReader()
    make = functools.partial(Telemetry.from_config, metric_readers=[reader])
    config = gateway_config(sections={"auth": AUTH}, max_connections=1)
    async with serving(config, backends(held), make_telemetry=make) as served:
        assert (await refused(served, origin="http://evil.example")).status_code == 403
        bad = {"additional_headers": {"Authorization": "Bearer no"}}
        assert (await refused(served, **bad)).status_code == 401
        good = {"additional_headers": {"Authorization": f"Bearer {KEYS['alice']}"}}
        async with socket(served, **good) as client:
            await client.unary("ListModels", {})
            open_then = values(reader, "llmrouter.gateway.sockets")
            assert (await refused(served, **good)).status_code == 503
        gateway = served.server.gateway
        assert gateway is not None
        await eventually(lambda: gateway.sockets == 0, WAIT_SECONDS)
        closed = values(reader, "llmrouter.gateway.sockets")
        refusals = values(reader, "llmrouter.gateway.refused_upgrades")

    assert open_then == {frozenset(): 1}
    assert closed == {frozenset(): 0}
    assert refusals == {
        frozenset({("reason", "origin")}): 1,
        frozenset({("reason", "key")}): 1,
        frozenset({("reason", "connections")}): 1,
    }
