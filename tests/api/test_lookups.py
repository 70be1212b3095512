"""ListModels, GetStats and health."""

from __future__ import annotations

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb

from tests.helpers import Served, start


async def test_list_models_shows_the_default_embedded_route(served: Served) -> None:
    reply = await served.stub.ListModels(svc_pb.ListModelsRequest())

    assert [route.name for route in reply.routes] == ["smollm2-135m-instruct"]
    route = reply.routes[0]
    assert route.is_default
    assert [(t.backend, t.model, t.kind) for t in route.targets] == [
        ("embedded", "smollm2-135m-instruct", ops_pb.BACKEND_KIND_EMBEDDED)
    ]
    target = route.targets[0]
    assert (target.in_flight, target.queued, target.max_concurrency) == (0, 0, 1)
    assert target.circuit == ops_pb.CIRCUIT_STATE_CLOSED


async def test_list_models_counts_a_running_generation(served: Served) -> None:
    call = served.stub.Generate(iter([start(sampling={"max_tokens": 200})]))
    await call.read()
    await call.read()

    reply = await served.stub.ListModels(svc_pb.ListModelsRequest())
    call.cancel()

    assert reply.routes[0].targets[0].in_flight == 1


@pytest.mark.parametrize("service", ["", "llmrouter.v1.RouterService"])
async def test_health_is_serving(served: Served, service: str) -> None:
    stub = health_pb2_grpc.HealthStub(served.channel)

    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))

    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_get_stats_reports_the_default_route(served: Served) -> None:
    reply = await served.stub.GetStats(svc_pb.GetStatsRequest())

    assert [row.model for row in reply.per_model] == ["smollm2-135m-instruct"]
    assert reply.window.seconds == 300
