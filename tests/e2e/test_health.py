"""End to end: ``grpc.health.v1.Health`` with ``List``, through grpcurl and the stub.

The server runs in-process on a loopback port with the default configuration:
one route, ``smollm2-135m-instruct``, on the embedded model.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmrouter_server.api.health_service import MAX_LISTED_SERVICES
from tests.e2e.grpcurl import grpcurl
from tests.helpers import Served, loopback_config, serving

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICES = ["", "llmrouter.v1.RouterService", "smollm2-135m-instruct"]
"""The server as a whole, the service and the one route."""


@pytest.fixture(scope="module")
async def served() -> AsyncIterator[Served]:
    """The default configuration on a loopback port."""
    async with serving(loopback_config()) as served:
        yield served


def health_stub(served: Served) -> health_pb2_grpc.HealthStub:
    return health_pb2_grpc.HealthStub(served.channel)


async def test_grpcurl_lists_every_service_serving(served: Served) -> None:
    output = await grpcurl(served.address, "grpc.health.v1.Health/List")

    assert json.loads(output) == {"statuses": {name: {"status": "SERVING"} for name in SERVICES}}


async def test_list_through_the_stub(served: Served) -> None:
    response = await health_stub(served).List(health_pb2.HealthListRequest(), timeout=5)

    assert sorted(response.statuses) == SERVICES
    assert {r.status for r in response.statuses.values()} == {SERVING}


async def test_check_of_an_unknown_service_is_not_found(served: Served) -> None:
    request = health_pb2.HealthCheckRequest(service="no-such-service")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await health_stub(served).Check(request, timeout=5)

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_list_after_shutdown_began_is_all_not_serving() -> None:
    async with serving(loopback_config()) as served:
        await served.server.health.enter_graceful_shutdown()

        response = await health_stub(served).List(health_pb2.HealthListRequest(), timeout=5)

    assert sorted(response.statuses) == SERVICES
    assert {r.status for r in response.statuses.values()} == {NOT_SERVING}


async def test_list_of_too_many_services_is_resource_exhausted() -> None:
    async with serving(loopback_config()) as served:
        for index in range(MAX_LISTED_SERVICES - len(SERVICES) + 1):
            await served.server.health.set(f"extra-{index}", SERVING)

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health_stub(served).List(health_pb2.HealthListRequest(), timeout=5)

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.details() == "101 services, more than the 100 List reports"
