"""JSON output on the Anthropic backend: an instruction, and ``{`` prefilled for objects."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from llmrouter_server.backends.anthropic import AnthropicBackend
from llmrouter_server.backends.base import BackendRequest
from llmrouter_server.config import AnthropicBackendConfig
from llmrouter_server.values import Message, Role, Sampling

REQUEST = BackendRequest(
    model="claude-test",
    messages=(Message(Role.SYSTEM, "Be brief."), Message(Role.USER, "A person, please.")),
    max_tokens=50,
    sampling=Sampling(),
    json_output=True,
)
OBJECT = '{"type": "object", "properties": {"name": {"type": "string"}}}'
ARRAY = '{"type": "array", "items": {"type": "integer"}}'
INSTRUCTION = (
    "Answer with a single JSON value and nothing else: no text before or after it,"
    " no Markdown code fence."
)


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def _body(texts: list[str]) -> str:
    message = {"type": "message", "role": "assistant", "usage": {"input_tokens": 9}}
    deltas = [
        _event(
            "content_block_delta",
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": text}},
        )
        for text in texts
    ]
    end = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}}
    return (
        _event("message_start", {"type": "message_start", "message": message})
        + "".join(deltas)
        + _event("message_delta", end)
        + _event("message_stop", {"type": "message_stop"})
    )


async def _run(request: BackendRequest, texts: list[str]) -> tuple[dict[str, Any], str]:
    """The body the backend sent, and the text it streamed."""
    seen: list[httpx.Request] = []

    def handler(sent: httpx.Request) -> httpx.Response:
        seen.append(sent)
        return httpx.Response(200, text=_body(texts), headers={"content-type": "text/event-stream"})

    config = AnthropicBackendConfig(base_url="http://upstream.test/v1", api_key_env=None)
    backend = AnthropicBackend("claude", config, transport=httpx.MockTransport(handler))
    streamed = "".join([delta.text async for delta in backend.stream(request)])
    await backend.close()
    return json.loads(seen[0].content), streamed


def test_the_backend_offers_json_output() -> None:
    assert AnthropicBackend.supports_json


async def test_an_object_schema_is_an_instruction_and_a_prefilled_brace() -> None:
    body, streamed = await _run(replace(REQUEST, json_schema=OBJECT), ['"name": "Ada"', "}"])

    assert body["system"] == (
        f"Be brief.\n\n{INSTRUCTION} The value must be valid against this JSON Schema:\n{OBJECT}"
    )
    assert body["messages"] == [
        {"role": "user", "content": "A person, please."},
        {"role": "assistant", "content": "{"},
    ]
    assert streamed == '{"name": "Ada"}'  # the prefilled brace starts the output


@pytest.mark.parametrize("schema", ["", ARRAY, '{"type": ["object", "array"]}'])
async def test_without_an_object_only_schema_nothing_is_prefilled(schema: str) -> None:
    body, streamed = await _run(replace(REQUEST, json_schema=schema), ["[1, ", "2]"])

    assert body["messages"] == [{"role": "user", "content": "A person, please."}]
    assert body["system"].startswith(f"Be brief.\n\n{INSTRUCTION}")
    assert streamed == "[1, 2]"


async def test_a_continuation_already_holds_the_brace() -> None:
    request = replace(REQUEST, json_schema=OBJECT, continuation='{"name": "A')

    body, streamed = await _run(request, ['da"}'])

    assert body["messages"][-1] == {"role": "assistant", "content": '{"name": "A'}
    assert streamed == 'da"}'


async def test_text_output_has_no_instruction() -> None:
    body, _ = await _run(replace(REQUEST, json_output=False), ["Hi"])

    assert body["system"] == "Be brief."
