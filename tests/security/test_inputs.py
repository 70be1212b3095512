"""Every input answered: each message a client can send gets its answer on its own call.

Undecodable bytes, unknown enum values, bad page tokens and steering messages
that cannot be applied are INVALID_ARGUMENT (or the documented code) naming
the field; the call goes on with the messages after them; nothing a client
sends yields UNKNOWN, INTERNAL, a hang or a server traceback.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.api import control as control_module
from llmrouter_server.backends.scripted import ScriptedBackend, Step, words
from llmrouter_server.config import APIKeyConfig, AuthConfig
from tests.helpers import (
    Served,
    cancel,
    control_request,
    error_info,
    generate,
    serving,
    start,
    text,
)
from tests.security.scripted import ANSWER, config

pytestmark = pytest.mark.timeout(20)

JUNK = b"\xff\xff\xff"
"""Bytes that are no protobuf message (a truncated varint field tag)."""

BAD_UTF8_CANCEL = b"\x32\x03\x0a\x01\xff"
"""A GenerateRequest whose ``cancel.reason`` is not UTF-8: well-formed wire bytes that
still do not decode (proto3 strings must be UTF-8)."""

INVALID = grpc.StatusCode.INVALID_ARGUMENT
SERVICE = "/llmrouter.v1.RouterService/"

CONFIG = config(limits={"max_watches_per_call": 2})


class _Tracebacks(logging.Handler):
    """Keeps every record at ERROR or above, and every record carrying a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)


@pytest.fixture(autouse=True)
def tracebacks() -> Iterator[list[logging.LogRecord]]:
    """What the server (grpc and asyncio included) logged as an error; none by the end."""
    handler = _Tracebacks()
    logging.getLogger().addHandler(handler)
    try:
        yield handler.records
    finally:
        logging.getLogger().removeHandler(handler)
    assert [record.getMessage() for record in handler.records] == []


def backends() -> dict[str, ScriptedBackend]:
    """``fake`` answers ``ANSWER``; ``held`` says one word, then waits forever."""
    return {
        "fake": ScriptedBackend("fake", words(ANSWER)),
        "held": ScriptedBackend("held", [Step("one"), Step(stall=True)]),
    }


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """The server of ``CONFIG`` on ``backends()``."""
    async with serving(CONFIG, backends()) as served:  # type: ignore[arg-type]
        yield served


def raw(served: Served, method: str, response: type[Message]) -> Any:
    """A bidi multicallable sending bytes as they are (serialize messages yourself)."""
    return served.channel.stream_stream(
        SERVICE + method,
        request_serializer=lambda data: data,
        response_deserializer=response.FromString,
    )


def held_start(**fields: Any) -> bytes:
    """A serialized start on the route that stalls after its first word."""
    return start(model="held-model", **fields).SerializeToString()


def detail(error: ops_pb.CommandError, kind: type[Message]) -> Any:
    """The detail of type ``kind`` in an in-band error."""
    for packed in error.details:
        if packed.Is(kind.DESCRIPTOR):
            value = kind()
            packed.Unpack(value)
            return value
    raise AssertionError(f"no {kind.__name__} in the error's details")


def violations(error: grpc.aio.AioRpcError) -> list[str]:
    """The BadRequest field violations of a failed call."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert any(packed.Unpack(bad_request) for packed in status.details)
    return [violation.field for violation in bad_request.field_violations]


async def rest(call: Any) -> list[Any]:
    """The responses of a call driven with ``read`` and ``write``, up to its end."""
    responses = []
    while (response := await call.read()) is not grpc.aio.EOF:
        responses.append(response)
    return responses


async def read_until(call: Any, kind: str) -> list[Any]:
    """Generate responses up to and including the first event of ``kind``."""
    responses = []
    while True:
        response = await call.read()
        assert response is not grpc.aio.EOF, f"the call ended before {kind}"
        responses.append(response)
        if response.event.WhichOneof("kind") == kind:
            return responses


# Generate: steering messages


async def test_an_undecodable_steering_message_is_rejected_and_a_cancel_after_it_cancels(
    served: Served,
) -> None:
    call = raw(served, "Generate", svc_pb.GenerateResponse)()
    await call.write(held_start())
    started = (await read_until(call, "chunk"))[0].event
    await call.write(JUNK)
    await call.write(cancel().SerializeToString())

    rejected = await call.read()
    completed = await call.read()

    assert not rejected.HasField("event")
    assert rejected.rejected.code == INVALID.value[0]
    assert rejected.rejected.message == "GenerateRequest: the message could not be decoded"
    info = detail(rejected.rejected, error_details_pb2.ErrorInfo)
    assert (info.reason, info.metadata["field"]) == ("INVALID_ARGUMENT", "GenerateRequest")
    assert info.metadata["stream_id"] == started.stream_id
    assert completed.event.completed.finish_reason == ev_pb.FINISH_REASON_CANCELLED
    assert completed.event.completed.cancelled_by == ev_pb.CANCELLED_BY_CALLER
    assert await call.read() is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK


async def test_a_pause_and_a_resume_after_a_bad_message_still_apply(served: Served) -> None:
    call = raw(served, "Generate", svc_pb.GenerateResponse)()
    await call.write(held_start())
    await read_until(call, "chunk")
    await call.write(BAD_UTF8_CANCEL)
    await call.write(svc_pb.GenerateRequest(pause={"reason": "look"}).SerializeToString())

    rejected = await call.read()
    paused = await call.read()
    await call.write(svc_pb.GenerateRequest(resume={}).SerializeToString())
    resumed = await call.read()
    await call.write(cancel().SerializeToString())
    completed = await call.read()

    assert rejected.rejected.message == "GenerateRequest: the message could not be decoded"
    assert paused.event.paused.reason == "look"
    assert resumed.event.HasField("resumed")
    assert completed.event.completed.finish_reason == ev_pb.FINISH_REASON_CANCELLED


@pytest.mark.parametrize(
    ("request_", "code", "message", "field"),
    [
        pytest.param(
            svc_pb.GenerateRequest(),
            INVALID,
            "GenerateRequest.action: no action set",
            "GenerateRequest.action",
            id="no action",
        ),
        pytest.param(
            start(),
            grpc.StatusCode.FAILED_PRECONDITION,
            "GenerateRequest.start: this call's generation has already started",
            "GenerateRequest.start",
            id="a second start",
        ),
        pytest.param(
            svc_pb.GenerateRequest(attach={"stream_id": "x"}),
            grpc.StatusCode.FAILED_PRECONDITION,
            "GenerateRequest.attach: this call's generation has already started",
            "GenerateRequest.attach",
            id="attach after start",
        ),
        pytest.param(
            svc_pb.GenerateRequest(resume={}),
            grpc.StatusCode.FAILED_PRECONDITION,
            "is not paused (it is running)",
            None,
            id="resume when not paused",
        ),
        pytest.param(
            svc_pb.GenerateRequest(grant={"credits": 5}),
            grpc.StatusCode.FAILED_PRECONDITION,
            "grant: credits apply only to FLOW_MODE_CREDIT",
            None,
            id="credits in AUTO flow",
        ),
    ],
)
async def test_a_steering_message_that_cannot_apply_is_rejected_and_the_call_goes_on(
    served: Served,
    request_: svc_pb.GenerateRequest,
    code: grpc.StatusCode,
    message: str,
    field: str | None,
) -> None:
    call = served.stub.Generate()
    await call.write(start(model="held-model"))
    chunk = (await read_until(call, "chunk"))[-1].event
    await call.write(request_)
    rejected = await call.read()
    await call.write(cancel())
    completed = await call.read()

    assert rejected.rejected.code == code.value[0]
    assert message in rejected.rejected.message
    info = detail(rejected.rejected, error_details_pb2.ErrorInfo)
    assert info.metadata.get("field") == field
    assert info.metadata["stream_id"] == chunk.stream_id
    assert int(info.metadata["offset"]) == chunk.offset + 1
    assert completed.event.completed.finish_reason == ev_pb.FINISH_REASON_CANCELLED
    assert await call.code() == grpc.StatusCode.OK


async def test_zero_credits_are_rejected_while_the_cursor_waits_and_a_later_grant_applies(
    served: Served,
) -> None:
    call = served.stub.Generate()
    await call.write(start(flow={"mode": "FLOW_MODE_CREDIT", "initial_credits": 1}))
    started = await call.read()
    await call.write(svc_pb.GenerateRequest(grant={"credits": 0}))

    rejected = await call.read()  # no credit left: only a rejection can come now
    await call.write(svc_pb.GenerateRequest(grant={"credits": 100}))
    await call.done_writing()
    events = [started.event] + [response.event for response in await rest(call)]

    assert rejected.rejected.message == "grant.credits: must be positive"
    assert detail(rejected.rejected, error_details_pb2.BadRequest).field_violations[0].field == (
        "grant.credits"
    )
    assert text(events) == ANSWER
    assert events[-1].completed.finish_reason == ev_pb.FINISH_REASON_STOP


async def test_rejections_queued_before_the_end_come_before_it(served: Served) -> None:
    call = raw(served, "Generate", svc_pb.GenerateResponse)()
    await call.write(held_start())
    await read_until(call, "chunk")
    for _ in range(3):
        await call.write(JUNK)
    await call.write(cancel().SerializeToString())
    await call.done_writing()

    responses = await rest(call)

    kinds = [
        "rejected" if r.HasField("rejected") else r.event.WhichOneof("kind") for r in responses
    ]
    assert kinds == ["rejected", "rejected", "rejected", "completed"]


@pytest.mark.parametrize("junk", [JUNK, BAD_UTF8_CANCEL], ids=["corrupt", "bad UTF-8"])
async def test_an_undecodable_first_message_is_invalid_argument(
    served: Served, junk: bytes
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await raw(served, "Generate", svc_pb.GenerateResponse)(iter([junk])).read()

    assert caught.value.code() == INVALID
    assert caught.value.details() == "GenerateRequest: the message could not be decoded"
    assert error_info(caught.value).metadata["field"] == "GenerateRequest"
    assert violations(caught.value) == ["GenerateRequest"]


# Generate: enum values this server does not know


THREE_MESSAGES = {
    "prompt": "",
    "messages": [
        {"role": "CHAT_ROLE_USER", "content": "a"},
        {"role": "CHAT_ROLE_ASSISTANT", "content": "b"},
        {"role": 9, "content": "c"},
    ],
}

UNKNOWN_ENUMS = [
    ("start.messages[2].role", THREE_MESSAGES),
    ("start.response_format.format", {"response_format": {"format": 7}}),
    ("start.flow.mode", {"flow": {"mode": 5}}),
    ("start.on_disconnect.action", {"on_disconnect": {"action": 3}}),
    ("start.stream_options.coalescing.mode", {"stream_options": {"coalescing": {"mode": 42}}}),
    ("start.routing.policy", {"routing": {"policy": 5}}),
    ("start.routing.on_mid_stream_failure", {"routing": {"on_mid_stream_failure": -1}}),
]


@pytest.mark.parametrize(("field", "fields"), [pytest.param(f, v, id=f) for f, v in UNKNOWN_ENUMS])
async def test_an_unknown_enum_value_in_start_is_invalid_argument_naming_the_field(
    served: Served, field: str, fields: dict[str, Any]
) -> None:
    fields = dict(fields)
    prompt = fields.pop("prompt", "hi")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await generate(served.stub, start(prompt, **fields))

    assert caught.value.code() == INVALID
    assert caught.value.details().startswith(f"{field}: unknown value ")
    assert violations(caught.value) == [field]


async def test_an_unknown_flow_mode_on_attach_is_invalid_argument(served: Served) -> None:
    attach = svc_pb.GenerateRequest(attach={"stream_id": "x", "flow": {"mode": 9}})

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await generate(served.stub, attach)

    assert caught.value.code() == INVALID
    assert caught.value.details() == (
        "attach.flow.mode: unknown value 9 (expected FLOW_MODE_AUTO, FLOW_MODE_CREDIT)"
    )


# Generate: JSON schemas


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        pytest.param("[" * 60_000, "nests deeper than 64 levels", id="deep array"),
        pytest.param(
            '{"properties": ' * 70 + "{}" + "}" * 70, "nests deeper than 64 levels", id="deep"
        ),
        pytest.param('{"$schema": []}', "$schema must be a string", id="$schema list"),
        pytest.param(
            '{"$ref": "http://127.0.0.1:9/schema.json"}',
            "$ref 'http://127.0.0.1:9/schema.json' does not resolve inside the schema "
            "(references are never fetched)",
            id="remote $ref",
        ),
        pytest.param(
            '{"$ref": "#/$defs/missing"}', "$ref '#/$defs/missing' does not resolve", id="no target"
        ),
        pytest.param(
            '{"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}',
            "a $ref loops back to its own schema without stepping into the value",
            id="$ref loop",
        ),
        pytest.param(
            '{"properties": {"x": {"allOf": [{"$ref": "#/properties/x"}]}}}',
            "a $ref loops back",
            id="allOf loop",
        ),
    ],
)
async def test_a_schema_the_server_cannot_use_is_invalid_argument(
    served: Served, schema: str, message: str
) -> None:
    response_format = {"format": "OUTPUT_FORMAT_JSON", "json_schema": schema}

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await generate(served.stub, start(response_format=response_format))

    assert caught.value.code() == INVALID
    assert caught.value.details().startswith("start.response_format.json_schema: ")
    assert message in caught.value.details()


async def test_a_recursive_schema_that_steps_into_the_value_is_accepted(served: Served) -> None:
    schema = (
        '{"$defs": {"node": {"type": "object", "properties": {"kids": {"type": "array", '
        '"items": {"$ref": "#/$defs/node"}}}}}, "$ref": "#/$defs/node"}'
    )
    served.backend("fake").script = words('{"kids": [{"kids": []}]}')
    response_format = {"format": "OUTPUT_FORMAT_JSON", "json_schema": schema}

    events = await generate(served.stub, start(response_format=response_format))

    assert events[-1].completed.finish_reason == ev_pb.FINISH_REASON_STOP


# Control


async def test_an_undecodable_control_message_gets_an_error_reply_and_the_call_goes_on(
    served: Served,
) -> None:
    stream_id = (await generate(served.stub, start()))[0].stream_id
    status = control_request("2", status={"stream_id": stream_id}).SerializeToString()

    replies = [
        reply
        async for reply in raw(served, "Control", svc_pb.ControlResponse)(iter([JUNK, status]))
    ]

    assert [reply.WhichOneof("result") for reply in replies] == ["error", "status"]
    assert replies[0].request_id == ""
    assert replies[0].error.code == INVALID.value[0]
    assert replies[0].error.message == "ControlRequest: the message could not be decoded"
    assert replies[1].request_id == "2"
    assert replies[1].status.state == ops_pb.STREAM_STATE_COMPLETED


async def test_a_list_with_an_unknown_state_is_an_error_reply_and_later_commands_are_answered(
    served: Served,
) -> None:
    await generate(served.stub, start())
    requests = [
        control_request("1", list={"states": [ops_pb.STREAM_STATE_COMPLETED, 99]}),
        control_request("2", list={"states": [ops_pb.STREAM_STATE_COMPLETED]}),
    ]

    replies = [reply async for reply in served.stub.Control(iter(requests))]

    assert [(r.request_id, r.WhichOneof("result")) for r in replies] == [
        ("1", "error"),
        ("2", "list"),
    ]
    assert replies[0].error.code == INVALID.value[0]
    assert replies[0].error.message.startswith("ListStreamsCommand.states: unknown value 99 ")
    assert len(replies[1].list.streams) == 1


async def test_watching_more_ids_than_the_limit_is_resource_exhausted_in_band(
    served: Served,
) -> None:
    ids = [(await generate(served.stub, start()))[0].stream_id for _ in range(3)]
    requests = [
        control_request("1", watch={"stream_ids": ids[:2]}),
        control_request("2", watch={"stream_ids": ids[2:]}),
        control_request("3", unwatch={"stream_ids": ids[:1]}),
        control_request("4", watch={"stream_ids": ids[2:]}),
        control_request("5", unwatch={}),
    ]

    replies = [reply async for reply in served.stub.Control(iter(requests))]

    assert [(r.request_id, r.WhichOneof("result")) for r in replies] == [
        ("1", "list"), ("2", "error"), ("3", "list"), ("4", "list"), ("5", "list"),
    ]  # fmt: skip
    assert replies[1].error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert replies[1].error.message.startswith(
        "limits.max_watches_per_call: a Control call may watch at most 2 stream ids"
    )


async def test_a_bug_in_a_control_task_ends_the_call_with_internal_and_is_logged(
    served: Served, monkeypatch: pytest.MonkeyPatch, tracebacks: list[logging.LogRecord]
) -> None:
    async def broken(*args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(control_module, "_run", broken)
    call = served.stub.Control()
    await call.write(control_request("1", list={}))

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()

    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == (
        "internal error in the Control command reader; the server logged it"
    )
    assert "a bug" not in caught.value.details()
    assert [(r.getMessage(), r.exc_info is not None) for r in tracebacks] == [
        ("Control command reader failed", True)
    ]
    tracebacks.clear()


# Subscribe


async def test_an_undecodable_subscribe_message_ends_nothing_and_the_call_goes_on(
    served: Served,
) -> None:
    stream_id = (await generate(served.stub, start()))[0].stream_id
    add = svc_pb.SubscribeRequest(add={"stream_id": stream_id}).SerializeToString()

    items = [
        item async for item in raw(served, "Subscribe", svc_pb.SubscribeResponse)(iter([JUNK, add]))
    ]

    assert items[0].ended.stream_id == ""
    assert items[0].ended.error.code == INVALID.value[0]
    assert items[0].ended.error.message == "SubscribeRequest: the message could not be decoded"
    assert items[1].added.stream_id == stream_id
    assert text([item.event for item in items if item.HasField("event")]) == ANSWER
    assert items[-1].ended.stream_id == stream_id
    assert items[-1].ended.error.code == 0


@pytest.mark.parametrize(
    ("add", "field"),
    [
        ({"slow_policy": 17}, "AddSubscription.slow_policy"),
        ({"flow": {"mode": 4}}, "AddSubscription.flow.mode"),
    ],
    ids=["slow policy", "flow mode"],
)
async def test_an_unknown_enum_value_in_a_subscription_is_invalid_argument(
    served: Served, add: dict[str, Any], field: str
) -> None:
    stream_id = (await generate(served.stub, start()))[0].stream_id
    requests = [
        svc_pb.SubscribeRequest(add={"stream_id": stream_id, **add}),
        svc_pb.SubscribeRequest(add={"stream_id": stream_id}),
    ]

    items = [item async for item in served.stub.Subscribe(iter(requests))]

    assert items[0].ended.stream_id == stream_id
    assert items[0].ended.error.code == INVALID.value[0]
    assert items[0].ended.error.message.startswith(f"{field}: unknown value ")
    assert items[1].added.stream_id == stream_id
    assert items[-1].ended.error.code == 0


# Unary lookups


@pytest.mark.parametrize(
    ("method", "response"),
    [
        ("ListModels", svc_pb.ListModelsResponse),
        ("ListStreams", svc_pb.ListStreamsResponse),
        ("GetStream", svc_pb.GetStreamResponse),
        ("GetStats", svc_pb.GetStatsResponse),
    ],
)
async def test_undecodable_lookups_are_invalid_argument(
    served: Served, method: str, response: type[Message]
) -> None:
    lookup = served.channel.unary_unary(
        SERVICE + method, request_serializer=lambda data: data, response_deserializer=response
    )

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await lookup(JUNK)

    assert caught.value.code() == INVALID
    assert caught.value.details() == f"{method}Request: the message could not be decoded"
    assert violations(caught.value) == [f"{method}Request"]


async def test_list_streams_with_an_unknown_state_is_invalid_argument(served: Served) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.ListStreams(svc_pb.ListStreamsRequest(states=[1, 99]))

    assert caught.value.code() == INVALID
    assert caught.value.details().startswith("ListStreamsRequest.states: unknown value 99 ")
    assert violations(caught.value) == ["ListStreamsRequest.states"]


@pytest.mark.parametrize("token", ["next please", "-1", "²", "١٢"])
async def test_list_streams_with_a_made_up_page_token_is_invalid_argument(
    served: Served, token: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.ListStreams(svc_pb.ListStreamsRequest(page_token=token))

    assert caught.value.code() == INVALID
    assert caught.value.details() == (
        "ListStreamsRequest.page_token: is not a token this server gave"
    )


async def test_an_unspecified_state_is_ignored_as_before(served: Served) -> None:
    await generate(served.stub, start())

    page = await served.stub.ListStreams(svc_pb.ListStreamsRequest(states=[0]))

    assert len(page.streams) == 1


async def test_a_stream_alongside_bad_calls_runs_on(served: Served) -> None:
    """A bad message touches only its own call: one running alongside is not disturbed."""
    alongside = served.stub.Generate()
    await alongside.write(start(model="held-model"))
    await read_until(alongside, "chunk")

    with pytest.raises(grpc.aio.AioRpcError):
        await raw(served, "Generate", svc_pb.GenerateResponse)(iter([JUNK])).read()
    control = [r async for r in raw(served, "Control", svc_pb.ControlResponse)(iter([JUNK]))]
    items = [i async for i in raw(served, "Subscribe", svc_pb.SubscribeResponse)(iter([JUNK]))]
    await alongside.write(cancel())
    completed = await alongside.read()

    assert [reply.WhichOneof("result") for reply in control] == ["error"]
    assert [item.WhichOneof("item") for item in items] == ["ended"]
    assert completed.event.completed.cancelled_by == ev_pb.CANCELLED_BY_CALLER
    assert text([completed.event]) == ""


# The standard services beside RouterService


@pytest.mark.parametrize(
    ("method", "shape", "type_name"),
    [
        ("/grpc.health.v1.Health/Check", "unary_unary", "HealthCheckRequest"),
        ("/grpc.health.v1.Health/Watch", "unary_stream", "HealthCheckRequest"),
        (
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            "stream_stream",
            "ServerReflectionRequest",
        ),
    ],
    ids=["health Check", "health Watch", "reflection"],
)
async def test_undecodable_requests_to_health_and_reflection_are_invalid_argument(
    served: Served, method: str, shape: str, type_name: str
) -> None:
    multicallable = getattr(served.channel, shape)(
        method, request_serializer=lambda data: data, response_deserializer=lambda data: data
    )
    call = multicallable(iter([JUNK]) if shape == "stream_stream" else JUNK)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await (call if shape == "unary_unary" else call.read())

    assert caught.value.code() == INVALID
    assert caught.value.details() == f"{type_name}: the message could not be decoded"


async def test_health_still_answers_well_formed_requests(served: Served) -> None:
    stub = health_pb2_grpc.HealthStub(served.channel)

    checked = await stub.Check(health_pb2.HealthCheckRequest(service=""))
    watch = stub.Watch(health_pb2.HealthCheckRequest(service=""))
    watched = await watch.read()
    watch.cancel()

    assert checked.status == health_pb2.HealthCheckResponse.SERVING
    assert watched.status == health_pb2.HealthCheckResponse.SERVING


# With authentication


async def test_credentials_are_checked_before_a_message_is_decoded() -> None:
    key = "s3cret-key"
    api_key = APIKeyConfig(id="k", sha256=hashlib.sha256(key.encode()).hexdigest(), tenant="t")
    config = CONFIG.model_copy(update={"auth": AuthConfig(api_keys=[api_key])})
    credentials = (("authorization", f"Bearer {key}"),)
    async with serving(config, backends()) as served:  # type: ignore[arg-type]
        lookup = served.channel.unary_unary(
            SERVICE + "ListStreams",
            request_serializer=lambda data: data,
            response_deserializer=svc_pb.ListStreamsResponse.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await lookup(JUNK)
        with pytest.raises(grpc.aio.AioRpcError) as known:
            await lookup(JUNK, metadata=credentials)
        control = raw(served, "Control", svc_pb.ControlResponse)
        replies = [reply async for reply in control(iter([JUNK]), metadata=credentials)]

    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert known.value.code() == INVALID
    assert known.value.details() == "ListStreamsRequest: the message could not be decoded"
    assert replies[0].error.message == "ControlRequest: the message could not be decoded"
