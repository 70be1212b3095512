"""ListModels, health, and the RPCs that answer UNIMPLEMENTED for now."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb

from tests.helpers import Served, read_events, start


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


def _control(served: Served) -> Awaitable[Any]:
    return _drain(served.stub.Control(iter([svc_pb.ControlRequest()])))


def _subscribe(served: Served) -> Awaitable[Any]:
    return _drain(served.stub.Subscribe(iter([svc_pb.SubscribeRequest()])))


async def _drain(call: Any) -> None:
    async for _ in call:
        pass


CALLS: dict[str, Callable[[Served], Awaitable[Any]]] = {
    "Control": _control,
    "Subscribe": _subscribe,
    "ListStreams": lambda s: s.stub.ListStreams(svc_pb.ListStreamsRequest()),
    "GetStream": lambda s: s.stub.GetStream(svc_pb.GetStreamRequest(stream_id="x")),
    "GetStats": lambda s: s.stub.GetStats(svc_pb.GetStatsRequest()),
}


@pytest.mark.parametrize("rpc", list(CALLS))
async def test_rpcs_not_built_yet_answer_unimplemented(served: Served, rpc: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await CALLS[rpc](served)

    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert caught.value.details() == f"llmrouter.v1.RouterService/{rpc} is not implemented yet"


@pytest.mark.parametrize("action", ["pause", "resume", "grant"])
async def test_steering_actions_not_built_yet_end_the_call_unimplemented(
    served: Served, action: str
) -> None:
    call = served.stub.Generate()
    await call.write(start(sampling={"max_tokens": 200}))
    await call.read()
    await call.write(svc_pb.GenerateRequest(**{action: {}}))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await read_events(call)

    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert caught.value.details() == f"GenerateRequest.{action}: not implemented yet"
