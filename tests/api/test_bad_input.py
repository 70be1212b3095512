"""Bad input gets the right status and a message naming the field; nothing else breaks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import service_pb2 as svc_pb

from tests.helpers import Served, cancel, error_info, generate, kinds, read_events, start

INVALID = grpc.StatusCode.INVALID_ARGUMENT

CASES: list[tuple[str, list[svc_pb.GenerateRequest], grpc.StatusCode, str]] = [
    ("no messages at all", [], INVALID, "GenerateRequest.start"),
    ("cancel first", [cancel()], INVALID, "GenerateRequest.start"),
    ("empty request first", [svc_pb.GenerateRequest()], INVALID, "GenerateRequest.start"),
    ("empty prompt and messages", [start("")], INVALID, "start.prompt"),
    (
        "prompt and messages",
        [start(messages=[{"role": "CHAT_ROLE_USER", "content": "hi"}])],
        INVALID,
        "start.prompt",
    ),
    (
        "message without role",
        [start("", messages=[{"content": "hi"}])],
        INVALID,
        "start.messages[0].role",
    ),
    (
        "empty message content",
        [start("", messages=[{"role": "CHAT_ROLE_USER", "content": ""}])],
        INVALID,
        "start.messages[0].content",
    ),
    ("max_tokens zero", [start(sampling={"max_tokens": 0})], INVALID, "start.sampling.max_tokens"),
    (
        "max_tokens negative",
        [start(sampling={"max_tokens": -5})],
        INVALID,
        "start.sampling.max_tokens",
    ),
    (
        "max_tokens above the cap",
        [start(sampling={"max_tokens": 257})],
        INVALID,
        "start.sampling.max_tokens",
    ),
    ("temperature", [start(sampling={"temperature": 3.5})], INVALID, "start.sampling.temperature"),
    ("top_p", [start(sampling={"top_p": 0})], INVALID, "start.sampling.top_p"),
    ("empty stop", [start(stop=[""])], INVALID, "start.stop"),
    ("stream id", [start(stream_id="bad id!")], INVALID, "start.stream_id"),
    (
        "detach TTL too long",
        [
            start(
                on_disconnect={
                    "action": "DISCONNECT_ACTION_DETACH",
                    "detach_ttl": timedelta(hours=1),
                }
            )
        ],
        INVALID,
        "start.on_disconnect.detach_ttl",
    ),
    (
        "SIZE coalescing without max_chars",
        [start(stream_options={"coalescing": {"mode": "COALESCE_MODE_SIZE"}})],
        INVALID,
        "start.stream_options.coalescing.max_chars",
    ),
    (
        "schema without JSON",
        [start(response_format={"json_schema": "{}"})],
        INVALID,
        "start.response_format.json_schema",
    ),
    (
        "schema that is not JSON",
        [start(response_format={"format": "OUTPUT_FORMAT_JSON", "json_schema": "{type"})],
        INVALID,
        "start.response_format.json_schema: is not JSON",
    ),
    (
        "a routing override looser than the route",
        [start(routing={"max_attempts": 4})],
        INVALID,
        "start.routing.max_attempts",
    ),
    (
        "a RACE override on a FALLBACK route",
        [start(routing={"policy": "ROUTE_POLICY_RACE"})],
        INVALID,
        "start.routing.policy",
    ),
    (
        "a negative first-token timeout",
        [start(routing={"first_token_timeout": {"seconds": -1}})],
        INVALID,
        "start.routing.first_token_timeout",
    ),
    (
        "a stop sequence too long",
        [start(stop=["x" * 257])],
        INVALID,
        "start.stop: each stop sequence is at most 256 characters",
    ),
    ("unknown model", [start(model="gpt-17")], grpc.StatusCode.NOT_FOUND, "start.model"),
    (
        "unknown model on a known backend",
        [start(model="embedded/llama-9000")],
        grpc.StatusCode.NOT_FOUND,
        "start.model",
    ),
    (
        "attach to an unknown stream",
        [svc_pb.GenerateRequest(attach=gen_pb.AttachGeneration(stream_id="x"))],
        grpc.StatusCode.NOT_FOUND,
        "stream 'x' not found",
    ),
]


@pytest.mark.parametrize(
    ("requests", "code", "field"),
    [pytest.param(requests, code, field, id=name) for name, requests, code, field in CASES],
)
async def test_bad_start_is_refused_naming_the_field(
    served: Served, requests: list[Any], code: grpc.StatusCode, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await generate(served.stub, *requests)

    assert caught.value.code() == code
    assert field in caught.value.details()
    assert error_info(caught.value).domain == "llmrouter.v1"
    await _still_serves(served)


async def test_invalid_argument_carries_a_bad_request_field_violation(served: Served) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await generate(served.stub, start(sampling={"max_tokens": 0}))

    status = rpc_status.from_call(caught.value)  # type: ignore[arg-type]
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad_request) for detail in status.details)
    assert [v.field for v in bad_request.field_violations] == ["start.sampling.max_tokens"]
    assert error_info(caught.value).reason == "INVALID_ARGUMENT"
    assert error_info(caught.value).metadata["field"] == "start.sampling.max_tokens"


async def test_second_start_is_rejected_in_band_and_the_call_goes_on(served: Served) -> None:
    call = served.stub.Generate()
    await call.write(start(sampling={"max_tokens": 200}))
    first = await call.read()
    await call.write(start())
    while not (response := await call.read()).HasField("rejected"):
        assert response.event.WhichOneof("kind") != "completed"
    await call.write(cancel())
    events = await read_events(call)

    rejected = response.rejected
    assert rejected.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert rejected.message == "GenerateRequest.start: this call's generation has already started"
    info = error_details_pb2.ErrorInfo()
    assert any(detail.Unpack(info) for detail in rejected.details)
    assert info.metadata["stream_id"] == first.event.stream_id
    assert int(info.metadata["offset"]) > 0
    assert events[-1].completed.finish_reason == ev_pb.FINISH_REASON_CANCELLED
    await _still_serves(served)


async def test_taken_stream_id_is_already_exists(served: Served) -> None:
    call = served.stub.Generate(iter([start(stream_id="taken", sampling={"max_tokens": 200})]))
    await call.read()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await generate(served.stub, start(stream_id="taken"))

    call.cancel()
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "start.stream_id" in caught.value.details()


async def test_oversized_prompt_is_invalid_argument(served: Served) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await generate(served.stub, start("x" * (256 * 1024 + 1)))

    assert caught.value.code() == INVALID
    assert "start.prompt" in caught.value.details()
    assert "262145 bytes" in caught.value.details()


async def test_prompt_longer_than_the_context_is_invalid_argument(served: Served) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await generate(served.stub, start("word " * 3000))

    assert caught.value.code() == INVALID
    assert "start.prompt" in caught.value.details()
    assert "context is 2048 tokens" in caught.value.details()
    await _still_serves(served)


async def test_message_over_the_transport_limit_is_resource_exhausted(served: Served) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await generate(served.stub, start("x" * (5 * 1024 * 1024)))

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    await _still_serves(served)


async def _still_serves(served: Served) -> None:
    events = await generate(served.stub, start(sampling={"max_tokens": 2}))
    assert kinds(events)[-1] == "completed"
