"""JSON output through the real server: the embedded model, failures, bad input."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_status import rpc_status
from llmrouter.v1 import events_pb2 as ev_pb

from llmrouter_server.backends.scripted import ScriptedBackend, Step
from llmrouter_server.config import LimitsConfig
from tests.helpers import (
    Served,
    cancel,
    error_info,
    generate,
    kinds,
    loopback_config,
    read_events,
    scripted_config,
    serving,
    start,
    text,
)

MAX_SCHEMA_BYTES = LimitsConfig().max_schema_bytes
"""The default ``limits.max_schema_bytes``."""

PERSON = json.dumps(
    {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
)
PRICES = json.dumps(
    {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"price": {"type": "number"}}},
            }
        },
    }
)
BAD_ITEMS = '{"items": [{"price": 1}, {"price": 2.5}, {"price": "abc"}]}'
JSON = "OUTPUT_FORMAT_JSON"

SCRIPTED = scripted_config("fake")


def snapshots(events: list[Any]) -> list[tuple[str, bool]]:
    return [(e.json.json, e.json.complete) for e in events if e.HasField("json")]


def json_detail(error: grpc.aio.AioRpcError) -> ev_pb.JsonOutputInvalid:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(ev_pb.JsonOutputInvalid.DESCRIPTOR):
            found = ev_pb.JsonOutputInvalid()
            detail.Unpack(found)
            return found
    raise AssertionError("no JsonOutputInvalid in the status details")


@pytest.fixture(scope="module")
async def embedded() -> AsyncIterator[Served]:
    async with serving(loopback_config()) as served:
        yield served


@pytest.mark.parametrize("schema", ["", PERSON], ids=["any JSON", "a schema"])
async def test_the_embedded_model_streams_growing_snapshots_and_the_final_value(
    embedded: Served, schema: str
) -> None:
    request = start(
        "Describe a person as JSON with a name and an age.",
        response_format={"format": JSON, "json_schema": schema},
        sampling={"max_tokens": 64},
    )

    events = await generate(embedded.stub, request)

    assert kinds(events)[-1] == "completed"
    value = json.loads(text(events))
    seen = snapshots(events)
    assert seen[-1] == (json.dumps(value, separators=(",", ":"), ensure_ascii=False), True)
    assert [complete for _, complete in seen] == [False] * (len(seen) - 1) + [True]
    partial = [snapshot for snapshot, _ in seen[:-1]]
    assert len(partial) >= 2
    assert len(set(partial)) == len(partial), "a snapshot is sent only when the value changed"
    assert all(len(a) <= len(b) for a, b in itertools.pairwise(partial))
    if schema:
        assert isinstance(value["name"], str)
        assert isinstance(value["age"], int)
    # Each json event follows the chunk whose text changed the value.
    for index, kind in enumerate(kinds(events)):
        if kind == "json" and not events[index].json.complete:
            assert kinds(events)[index - 1] == "chunk"


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[Served, ScriptedBackend]]:
    backend = ScriptedBackend("fake", [])
    async with serving(SCRIPTED, {"fake": backend}) as served:
        yield served, backend


async def read_into(call: Any, events: list[Any]) -> None:
    """Reads the call's events into ``events`` until it ends, so they survive an error."""
    async for response in call:
        events.append(response.event)  # noqa: PERF401 - a comprehension loses them on error


def steps(text: str, size: int = 7) -> list[Step]:
    return [Step(text[i : i + size]) for i in range(0, len(text), size)]


async def test_a_schema_failure_ends_the_call_naming_path_and_rule_with_the_text(
    scripted: tuple[Served, ScriptedBackend],
) -> None:
    served, backend = scripted
    backend.script = steps(BAD_ITEMS)
    call = served.stub.Generate(
        iter([start(response_format={"format": JSON, "json_schema": PRICES})])
    )
    events: list[Any] = []

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await read_into(call, events)

    error = caught.value
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == (
        "output does not match the JSON schema: "
        "$.items[2].price: 'abc' is not of type 'number' (rule 'type')"
    )
    info = error_info(error)
    assert info.reason == "JSON_OUTPUT_INVALID"
    assert info.metadata["offset"] == str(len(events))
    detail = json_detail(error)
    assert (detail.text, detail.path, detail.rule, detail.message, detail.truncated) == (
        BAD_ITEMS,
        "$.items[2].price",
        "type",
        "'abc' is not of type 'number'",
        False,
    )
    # Everything streamed before the end: the text and the snapshots of the value so far.
    assert text(events) == BAD_ITEMS
    assert snapshots(events)[-1] == ('{"items":[{"price":1},{"price":2.5},{"price":"abc"}]}', False)


async def test_text_that_is_not_json_fails_with_rule_json(
    scripted: tuple[Served, ScriptedBackend],
) -> None:
    served, backend = scripted
    backend.script = steps("Sure! Here it is: {}")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await generate(served.stub, start(response_format={"format": JSON}))

    error = caught.value
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details().startswith("output is not valid JSON: expected value at line 1")
    detail = json_detail(error)
    assert (detail.text, detail.path, detail.rule) == ("Sure! Here it is: {}", "", "json")


async def test_a_value_cut_by_max_tokens_fails_and_a_long_text_is_truncated_in_the_detail(
    scripted: tuple[Served, ScriptedBackend],
) -> None:
    served, backend = scripted
    backend.script = [Step("["), *[Step('"' + "x" * 98 + '",') for _ in range(60)]]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await generate(
            served.stub, start(response_format={"format": JSON}, sampling={"max_tokens": 50})
        )

    detail = json_detail(caught.value)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert detail.truncated
    assert len(detail.text) == 4096
    assert detail.text.startswith('["xxx')


async def test_a_cancelled_json_generation_ends_with_its_cancel_not_a_validation_error(
    scripted: tuple[Served, ScriptedBackend],
) -> None:
    served, backend = scripted
    backend.script = [Step("{"), Step('"name"'), Step(stall=True)]
    call = served.stub.Generate()
    await call.write(start(response_format={"format": JSON}))
    events = await read_events(call, limit=4)  # started, "{", its snapshot, '"name"'
    await call.write(cancel())
    await call.done_writing()
    events += await read_events(call)

    assert kinds(events)[-1] == "completed"
    assert events[-1].completed.finish_reason == ev_pb.FINISH_REASON_CANCELLED
    assert text(events) == '{"name"'
    assert ("{}", False) in snapshots(events)
    assert all(not complete for _, complete in snapshots(events))


async def test_text_output_is_untouched(scripted: tuple[Served, ScriptedBackend]) -> None:
    served, backend = scripted
    backend.script = steps("not JSON at all")

    events = await generate(served.stub, start())

    assert text(events) == "not JSON at all"
    assert "json" not in kinds(events)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            '{"type": "numbr"}',
            "start.response_format.json_schema: is not a valid JSON Schema: at $.type ('anyOf'):",
        ),
        (
            '{"type": "object", "properties": {"a": {"minimum": "1"}}}',
            "start.response_format.json_schema: is not a valid JSON Schema: "
            "at $.properties.a.minimum ('type'): '1' is not of type 'number'",
        ),
        ("[1]", "start.response_format.json_schema: must be a JSON object"),
        ("true", "start.response_format.json_schema: must be a JSON object"),
        ("{type", "start.response_format.json_schema: is not JSON"),
        (
            json.dumps({"description": "x" * MAX_SCHEMA_BYTES}),
            f"start.response_format.json_schema: is {MAX_SCHEMA_BYTES + 19} bytes; "
            f"the limit is {MAX_SCHEMA_BYTES}",
        ),
    ],
    ids=["unknown type", "wrong keyword value", "an array", "a boolean", "not JSON", "too large"],
)
async def test_a_bad_schema_is_invalid_argument_naming_the_field(
    scripted: tuple[Served, ScriptedBackend], schema: str, message: str
) -> None:
    served, backend = scripted

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await generate(served.stub, start(response_format={"format": JSON, "json_schema": schema}))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(message)
    assert error_info(caught.value).metadata["field"] == "start.response_format.json_schema"
    assert backend.requests == []


async def test_a_schema_on_a_text_request_is_invalid_argument(
    scripted: tuple[Served, ScriptedBackend],
) -> None:
    served, _ = scripted

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await generate(served.stub, start(response_format={"json_schema": PERSON}))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == (
        "start.response_format.json_schema: is only allowed with OUTPUT_FORMAT_JSON"
    )
