"""Bad frames get an error status on their own call; the socket's other calls go on."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.gateway.helpers import (
    Client,
    as_json,
    error_info,
    gateway_config,
    invalid,
    joined,
    offsets,
    socket,
)
from tests.helpers import Served, serving, start
from tests.security.scripted import HELD_ANSWER, HeldBackend, backends

LIMIT = 4096
METHODS = "Generate, Control, Subscribe, ListModels, ListStreams, GetStream, GetStats"


def exhausted(message: str) -> dict[str, Any]:
    return {"code": 8, "message": message, "details": [error_info("RESOURCE_EXHAUSTED")]}


def over_limit(frame: str) -> dict[str, Any]:
    size = len(frame.encode())
    return exhausted(f"frame: {size} bytes, over gateway.max_frame_bytes ({LIMIT})")


def not_json(text: str) -> str:
    """What the gateway says of a frame that is not JSON: what the parser says."""
    try:
        json.loads(text)
    except ValueError as error:
        return f"is not JSON: {error}"
    raise AssertionError(f"{text!r} is JSON")


CUT = '{"id": "cut", "method": "ListModels", '
NO_ID = "every call frame needs an id, a non-empty string"
TOO_BIG = '{"id": "big", "method": "GetStream", "message": {"streamId": "' + "x" * LIMIT + '"}}'
CASES = [
    ("not JSON", "nope", "", invalid("frame", not_json("nope"))),
    ("not JSON, its id readable", CUT, "cut", invalid("frame", not_json(CUT))),
    ("not an object", "[1, 2]", "", invalid("frame", "must be a JSON object, got list")),
    ("no id", '{"method": "ListModels", "message": {}}', "", invalid("frame.id", NO_ID)),
    ("an id not a string", '{"id": 7, "method": "ListModels"}', "", invalid("frame.id", NO_ID)),
    (
        "an unknown method",
        '{"id": "b", "method": "Nope", "message": {}}',
        "b",
        {
            "code": 12,
            "message": f"frame.method: 'Nope' is not a RouterService method ({METHODS})",
            "details": [error_info("UNIMPLEMENTED")],
        },
    ),
    (
        "a first frame without method",
        '{"id": "b", "message": {}}',
        "b",
        invalid("frame.method", "a call's first frame names its method"),
    ),
    (
        "an unknown key",
        '{"id": "b", "method": "ListModels", "message": {}, "bogus": 1}',
        "b",
        invalid(
            "frame.bogus",
            "is not a frame key (cancel, end, id, message, metadata, method, timeoutMs)",
        ),
    ),
    (
        "a key of the wrong type",
        '{"id": "b", "method": "ListModels", "end": "yes"}',
        "b",
        invalid("frame.end", "must be a boolean"),
    ),
    (
        "a timeout that is not positive",
        '{"id": "b", "method": "ListModels", "timeoutMs": 0}',
        "b",
        invalid("frame.timeoutMs", "must be a positive whole number"),
    ),
    (
        "a unary message not of the request type",
        '{"id": "b", "method": "GetStream", "message": {"streamId": 5}}',
        "b",
        invalid("GetStreamRequest.stream_id", "expected string or bytes-like object, got 'int'"),
    ),
    (
        "a first Generate message not of the request type",
        '{"id": "b", "method": "Generate", "message": {"start": {"prompt": 5}}}',
        "b",
        invalid("GenerateRequest.start.prompt", "expected string or bytes-like object, got 'int'"),
    ),
    (
        "an auth frame later",
        '{"auth": "Bearer k"}',
        "",
        invalid("frame.auth", "comes first or not at all"),
    ),
    (
        "metadata that is not a string",
        '{"id": "b", "method": "ListModels", "message": {}, "metadata": {"traceparent": 5}}',
        "b",
        invalid("frame.metadata.traceparent", "must be a string"),
    ),
    (
        "a unary call ended without its message",
        '{"id": "b", "method": "ListModels", "end": true}',
        "b",
        invalid("frame.message", "a unary call needs its request message"),
    ),
    ("a frame over the limit", TOO_BIG, "big", over_limit(TOO_BIG)),
]


@pytest.fixture
async def served(held: HeldBackend) -> AsyncIterator[Served]:
    config = gateway_config(max_frame_bytes=LIMIT, max_calls_per_socket=3)
    async with serving(config, backends(held)) as served:
        yield served


@pytest.fixture
async def keeper(client: Client) -> list[Any]:
    """Generate call ``keep`` on ``held-model``: its first two messages."""
    await client.open("keep", "Generate", start(model="held-model", stream_id="keep"))
    return [await client.message("keep") for _ in range(2)]


async def unharmed(client: Client, held: HeldBackend, seen: list[Any]) -> None:
    """Call ``keep`` runs to its end: every event once, in order, and an OK status."""
    held.release.set()
    rest, status = await client.rest("keep")
    everything = seen + rest
    assert status == {"code": 0}
    assert joined(everything) == HELD_ANSWER
    assert offsets(everything) == list(range(len(HELD_ANSWER.split()) + 2))


@pytest.mark.parametrize(
    ("frame", "call_id", "status"), [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
async def test_a_bad_frame_ends_only_its_call(
    client: Client, held: HeldBackend, keeper: list[Any], frame: str, call_id: str, status: Any
) -> None:
    await client.send(frame)

    assert await client.next(call_id) == {"id": call_id, "status": status}
    await unharmed(client, held, keeper)


async def test_a_binary_frame_is_invalid(
    client: Client, held: HeldBackend, keeper: list[Any]
) -> None:
    await client.ws.send(b"{}")

    assert await client.next("") == {"id": "", "status": invalid("frame", "must be text")}
    await unharmed(client, held, keeper)


async def test_a_later_generate_message_that_does_not_parse_is_rejected_in_band(
    client: Client, held: HeldBackend, keeper: list[Any]
) -> None:
    await client.send({"id": "keep", "message": {"pause": {"reason": 7}}})
    rejected = await client.message("keep")
    await client.send({"id": "keep", "method": "Control", "message": {}})
    wrong_method = await client.message("keep")

    at = {"stream_id": "keep", "offset": "2"}
    bad_reason = "expected string or bytes-like object, got 'int'"
    assert rejected == {"rejected": invalid("GenerateRequest.pause.reason", bad_reason, **at)}
    assert wrong_method == {
        "rejected": invalid("frame.method", "is 'Control' but call 'keep' is a Generate call", **at)
    }
    await unharmed(client, held, keeper)


async def test_control_and_subscribe_answer_a_bad_later_message_in_band(
    client: Client, held: HeldBackend, keeper: list[Any]
) -> None:
    await client.open("ctl", "Control", {"requestId": "a", "status": {"streamId": "keep"}})
    assert (await client.message("ctl"))["requestId"] == "a"
    await client.send({"id": "ctl", "message": {"status": {"streamId": 5}}})
    control_error = await client.message("ctl")
    await client.send({"id": "ctl", "message": {"requestId": "b", "list": {}}, "end": True})
    control_rest, control_status = await client.rest("ctl")
    await client.open("sub", "Subscribe", {"add": {"streamId": "keep", "fromOffset": "2"}})
    added = await client.message("sub")
    await client.send({"id": "sub", "message": {"add": {"fromOffset": "x"}}})
    ended = await client.message("sub")
    await client.send({"id": "sub", "message": {"remove": {"streamId": "keep"}}, "end": True})
    _, subscribe_status = await client.rest("sub")

    bad_id = "expected string or bytes-like object, got 'int'"
    assert control_error == {"error": invalid("ControlRequest.status.stream_id", bad_id)}
    assert [reply["requestId"] for reply in control_rest] == ["b"]
    assert control_status == {"code": 0}
    assert added["added"]["streamId"] == "keep"
    bad_offset = "invalid literal for int() with base 10: 'x'"
    assert ended == {"ended": {"error": invalid("SubscribeRequest.add.from_offset", bad_offset)}}
    assert subscribe_status == {"code": 0}
    await unharmed(client, held, keeper)


async def test_a_message_after_the_end_or_over_the_limit_ends_its_open_call(
    client: Client, held: HeldBackend, keeper: list[Any]
) -> None:
    await client.open("late", "Generate", start(model="held-model", stream_id="late"), end=True)
    await client.message("late")  # started: the call runs
    await client.send({"id": "late", "message": as_json(start())})
    _, late = await client.rest("late")
    await client.open("big", "Generate", start(model="held-model", stream_id="big"))
    await client.message("big")
    frame = '{"id": "big", "message": {"pause": {"reason": "' + "y" * LIMIT + '"}}}'
    await client.send(frame)
    _, big = await client.rest("big")

    assert late == invalid("frame.message", "comes after the call's end")
    assert big == over_limit(frame)
    await unharmed(client, held, keeper)


async def test_a_frame_over_four_times_the_limit_closes_the_socket(
    served: Served, client: Client, held: HeldBackend, keeper: list[Any]
) -> None:
    async with socket(served) as other:
        await other.send('{"id": "huge", "message": "' + "z" * (4 * LIMIT) + '"}')
        await other.ws.wait_closed()

    assert other.ws.close_code == 1009
    await unharmed(client, held, keeper)


async def test_more_open_calls_than_the_limit_are_refused(
    client: Client, held: HeldBackend, keeper: list[Any]
) -> None:
    await client.open("second", "Generate", start(model="held-model", stream_id="second"))
    await client.open("third", "Control")
    await client.open("fourth", "ListModels", {})
    refused = await client.next("fourth")
    await client.send({"id": "third", "end": True})
    await client.rest("third")
    models, status = await client.call("fourth", "ListModels", {})

    limit = "at most 3 open calls per socket (gateway.max_calls_per_socket)"
    assert refused == {"id": "fourth", "status": exhausted(limit)}
    assert status == {"code": 0}
    assert len(models[0]["routes"]) == 2
    await unharmed(client, held, keeper)


async def test_a_ping_is_answered_with_its_value(client: Client) -> None:
    await client.send({"ping": {"n": [1, "two"]}})

    assert await client.next("<pong>") == {"pong": {"n": [1, "two"]}}


CANCELLED = {
    "code": 1,
    "message": "the client cancelled the call",
    "details": [error_info("CANCELLED")],
}


async def test_a_call_cancelled_as_it_opens_ends_cancelled(
    client: Client, held: HeldBackend, keeper: list[Any]
) -> None:
    # Both frames are written before the server runs: it reads them together.
    await client.open("quick", "Generate", start(model="held-model"))
    await client.send({"id": "quick", "cancel": True})

    assert await client.next("quick") == {"id": "quick", "status": CANCELLED}
    await unharmed(client, held, keeper)
