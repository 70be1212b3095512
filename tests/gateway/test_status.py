"""A call's status frame is the gRPC path's rich status for the same error, as JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.backends.scripted import ScriptedBackend, Step
from llmrouter_server.errors import BackendStatusError
from tests.gateway.helpers import Client, as_json, grpc_status, read_json, renamed
from tests.helpers import Served, scripted_config, serving, start
from tests.security.scripted import HeldBackend, backends

JSON = {"format": "OUTPUT_FORMAT_JSON"}


@pytest.fixture
async def served(held: HeldBackend) -> AsyncIterator[Served]:
    """``fake-model``, ``held-model`` and ``broken-model``, whose backend refuses (HTTP 400)."""
    broken = ScriptedBackend("broken", [Step(error=BackendStatusError("broken", 400, "no such"))])
    config = scripted_config("fake", "held", "broken", gateway={"port": 0})
    async with serving(config, {**backends(held), "broken": broken}) as served:
        yield served


async def grpc_call(served: Served, method: str, request: Any) -> Any:
    if method == "Generate":
        return await read_json(served.stub.Generate(iter([request])))
    return await getattr(served.stub, method)(request)


async def grpc_failure(served: Served, method: str, request: Any) -> Any:
    """The rich status of a gRPC call that must fail, as JSON."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await grpc_call(served, method, request)
    return grpc_status(caught.value)


CASES = [
    ("Generate", start(sampling={"max_tokens": 0}), 3),
    ("Generate", start(model="gpt-17"), 5),
    ("Generate", svc_pb.GenerateRequest(), 3),
    ("Generate", svc_pb.GenerateRequest(attach={"stream_id": "nope"}), 5),
    ("Generate", start(stream_id="bad id!"), 3),
    ("GetStream", svc_pb.GetStreamRequest(stream_id="nope"), 5),
    ("ListStreams", svc_pb.ListStreamsRequest(page_token="made-up"), 3),
]


@pytest.mark.parametrize(
    ("method", "request_", "code"),
    [pytest.param(*case, id=f"{case[0]}-{index}") for index, case in enumerate(CASES)],
)
async def test_an_error_status_equals_the_grpc_rich_status(
    served: Served, client: Client, method: str, request_: Any, code: int
) -> None:
    messages, status = await client.call("c", method, request_)

    assert messages == []
    assert status == await grpc_failure(served, method, request_)
    assert status["code"] == code
    assert status["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    if code == 3:
        assert status["details"][1]["@type"] == "type.googleapis.com/google.rpc.BadRequest"


async def test_invalid_arguments_carry_the_field_as_over_grpc(client: Client) -> None:
    _, status = await client.call("c", "Generate", start(sampling={"max_tokens": 0}))

    (info, bad_request) = status["details"]
    assert (info["reason"], info["metadata"]["field"]) == (
        "INVALID_ARGUMENT",
        "start.sampling.max_tokens",
    )
    assert [v["field"] for v in bad_request["fieldViolations"]] == ["start.sampling.max_tokens"]


async def test_a_taken_id_and_a_taken_generation_fail_as_over_grpc(
    served: Served, client: Client
) -> None:
    await client.open("owner", "Generate", start(model="held-model", stream_id="taken"))
    await client.message("owner")
    attach = svc_pb.GenerateRequest(attach={"stream_id": "taken"})

    for request, code in [(start(stream_id="taken"), 6), (attach, 9)]:
        _, status = await client.call("c", "Generate", request)
        assert status == await grpc_failure(served, "Generate", request)
        assert status["code"] == code


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"model": "broken-model"}, "type.googleapis.com/llmrouter.v1.RouteFailure"),
        ({"response_format": JSON}, "type.googleapis.com/llmrouter.v1.JsonOutputInvalid"),
    ],
    ids=["route failure", "json output invalid"],
)
async def test_a_failed_generation_ends_with_the_grpc_status_and_details(
    served: Served, client: Client, fields: dict[str, Any], detail: str
) -> None:
    messages, status = await client.call("c", "Generate", start(stream_id="ws", **fields))
    expected = await grpc_failure(served, "Generate", start(stream_id="grpc", **fields))

    assert renamed(status, "ws", "<id>") == renamed(expected, "grpc", "<id>")
    assert detail in [item["@type"] for item in status["details"]]
    assert messages[0]["event"]["streamId"] == "ws"


async def test_an_ok_status_is_the_code_alone(client: Client) -> None:
    assert await client.call("c", "ListModels", as_json(svc_pb.ListModelsRequest())) == (
        [await client.unary("ListModels", {})],
        {"code": 0},
    )
