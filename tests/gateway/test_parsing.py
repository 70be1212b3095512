"""A request that does not fit its type is refused naming the field, as the server's
other errors name fields (proto names, message levels included)."""

from __future__ import annotations

from typing import Any

import pytest
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.api.decoding import Undecodable
from llmrouter_server.gateway.parsing import parse

CASES = [
    (
        {"start": {"sampling": {"maxTokens": "x"}}},
        "GenerateRequest.start.sampling.max_tokens: invalid literal for int() with base 10: 'x'",
    ),
    (
        {"start": {"messages": [{"role": "CHAT_ROLE_USER", "content": "a"}, {"role": "X"}]}},
        "GenerateRequest.start.messages[1].role: "
        "Invalid enum value X for enum type llmrouter.v1.ChatRole",
    ),
    ({"start": 3}, "GenerateRequest.start: must be a JSON object"),
    ({"start": {"messages": 5}}, "GenerateRequest.start.messages: must be a JSON array"),
    ({"start": {"messages": [3]}}, "GenerateRequest.start.messages[0]: must be a JSON object"),
    (
        {"start": {"bogus": 1}},
        'GenerateRequest.start.bogus: Message type "llmrouter.v1.StartGeneration" '
        'has no field named "bogus"',
    ),
    ({"grant": {"credits": -1}}, "GenerateRequest.grant.credits: Value out of range: -1"),
]


@pytest.mark.parametrize(("value", "message"), CASES)
def test_a_message_that_does_not_fit_names_the_field(value: dict[str, Any], message: str) -> None:
    parsed = parse(svc_pb.GenerateRequest, value)

    assert isinstance(parsed, Undecodable)
    assert parsed.error().message == message
    assert parsed.error().field == message.partition(":")[0]


def test_a_message_that_fits_is_the_message() -> None:
    parsed = parse(svc_pb.GenerateRequest, {"start": {"prompt": "hi", "labels": {"a": "b"}}})

    assert parsed == svc_pb.GenerateRequest(
        start={"prompt": "hi", "labels": {"a": "b"}},  # type: ignore[arg-type]
    )
