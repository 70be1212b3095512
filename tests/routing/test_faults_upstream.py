"""The fault upstream on its own, driven with httpx: both dialects, every fault."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.routing.fault_dialects import PROMPT_TOKENS
from tests.routing.faults import (
    OK,
    Fault,
    FaultUpstream,
    closed_port_url,
    drop_after,
    malformed_after,
    slow,
    stall_after,
    status,
)

OPENAI = "chat/completions"
ANTHROPIC = "messages"
QUESTION = [{"role": "user", "content": "Count."}]


@pytest.fixture
async def upstream() -> AsyncIterator[FaultUpstream]:
    upstream = FaultUpstream(tokens=5)
    await upstream.start()
    try:
        yield upstream
    finally:
        await upstream.stop()


@pytest.fixture
async def client(upstream: FaultUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=upstream.base_url, timeout=2) as client:
        yield client


async def _post(
    client: httpx.AsyncClient, path: str, messages: list[dict[str, Any]] = QUESTION
) -> tuple[httpx.Response, list[tuple[str, str]]]:
    """Posts a streaming request; returns the response and its (event, data) pairs."""
    body = {"model": "m", "messages": messages, "stream": True}
    async with client.stream("POST", path, json=body, headers={"x-test": "yes"}) as response:
        raw = (await response.aread()).decode()
    return response, _parse(raw)


def _parse(raw: str) -> list[tuple[str, str]]:
    events = []
    for block in raw.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            events.append((fields.get("event", ""), fields["data"]))
    return events


def _openai_text(events: list[tuple[str, str]]) -> str:
    parts: list[str] = []
    for _, data in events:
        if data != "[DONE]":
            parts.extend(c["delta"].get("content", "") for c in json.loads(data)["choices"])
    return "".join(parts)


def _anthropic_text(events: list[tuple[str, str]]) -> str:
    return "".join(
        json.loads(data)["delta"]["text"] for name, data in events if name == "content_block_delta"
    )


async def test_openai_answer_is_every_token_then_finish_usage_and_done(
    upstream: FaultUpstream, client: httpx.AsyncClient
) -> None:
    response, events = await _post(client, OPENAI)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert _openai_text(events) == " t0 t1 t2 t3 t4"
    assert json.loads(events[-3][1])["choices"][0]["finish_reason"] == "stop"
    assert json.loads(events[-2][1]) == {
        "choices": [],
        "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 5},
    }
    assert events[-1] == ("", "[DONE]")
    assert upstream.bodies == [{"model": "m", "messages": QUESTION, "stream": True}]
    assert upstream.requests[0].headers["x-test"] == "yes"
    assert upstream.requests[0].path == "/v1/chat/completions"
    assert upstream.sent == [5]
    await upstream.wait_idle()
    assert (upstream.accepted, upstream.closed) == (1, 1)


async def test_anthropic_answer_has_the_messages_event_sequence(
    upstream: FaultUpstream, client: httpx.AsyncClient
) -> None:
    _, events = await _post(client, ANTHROPIC)

    assert [name for name, _ in events] == [
        "message_start", "content_block_start", "ping",
        *["content_block_delta"] * 5,
        "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip
    assert _anthropic_text(events) == " t0 t1 t2 t3 t4"
    assert json.loads(events[0][1])["message"]["usage"] == {"input_tokens": PROMPT_TOKENS}
    assert json.loads(events[-2][1]) == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn"},
        "usage": {"output_tokens": 5},
    }
    assert all(json.loads(data)["type"] == name for name, data in events)


@pytest.mark.parametrize(
    ("path", "prefix"),
    [
        pytest.param(OPENAI, " t0 t1", id="openai-string"),
        pytest.param(ANTHROPIC, [{"type": "text", "text": " t0 t1"}], id="anthropic-blocks"),
    ],
)
async def test_continuation_goes_on_after_the_assistant_words(
    upstream: FaultUpstream, client: httpx.AsyncClient, path: str, prefix: Any
) -> None:
    messages = [*QUESTION, {"role": "assistant", "content": prefix}]

    _, events = await _post(client, path, messages)

    text = _openai_text(events) if path == OPENAI else _anthropic_text(events)
    assert text == " t2 t3 t4"
    assert upstream.requests[0].continuation == " t0 t1"
    assert upstream.sent == [3]
    usage = json.loads(events[-2][1])["usage"]
    assert usage.get("completion_tokens", usage.get("output_tokens")) == 3


@pytest.mark.parametrize(
    ("path", "error"),
    [
        pytest.param(OPENAI, {"type": "rate_limit_exceeded"}, id="openai"),
        pytest.param(ANTHROPIC, {"type": "rate_limit_error"}, id="anthropic"),
    ],
)
async def test_status_fault_answers_json_error_with_retry_after(
    upstream: FaultUpstream, client: httpx.AsyncClient, path: str, error: dict[str, str]
) -> None:
    upstream.script = status(429, retry_after=1)

    response = await client.post(path, json={"messages": QUESTION})

    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body["error"]["message"] == "scripted 429"
    assert body["error"]["type"] == error["type"]
    assert upstream.sent == [0]


async def test_status_without_retry_after_has_no_header_and_a_given_body(
    upstream: FaultUpstream, client: httpx.AsyncClient
) -> None:
    upstream.script = status(503, body='{"error": "busy"}')

    response = await client.post(OPENAI, json={"messages": QUESTION})

    assert response.status_code == 503
    assert "retry-after" not in response.headers
    assert response.json() == {"error": "busy"}


@pytest.mark.parametrize("path", [OPENAI, ANTHROPIC])
async def test_drop_closes_after_k_tokens_without_an_end_marker(
    upstream: FaultUpstream, client: httpx.AsyncClient, path: str
) -> None:
    upstream.script = drop_after(2)

    _, events = await _post(client, path)

    text = _openai_text(events) if path == OPENAI else _anthropic_text(events)
    assert text == " t0 t1"
    assert "[DONE]" not in [data for _, data in events]
    assert "message_stop" not in [name for name, _ in events]
    assert upstream.sent == [2]
    await upstream.wait_idle()


async def _read_until_quiet(client: httpx.AsyncClient, path: str) -> str:
    """Reads a response until nothing comes for 0.2 s; closes it; returns what came."""
    chunks: list[bytes] = []
    body = {"messages": QUESTION}
    async with client.stream("POST", path, json=body, timeout=httpx.Timeout(2, read=0.2)) as r:
        with pytest.raises(httpx.ReadTimeout):
            await _collect(r, chunks)
    return b"".join(chunks).decode()


async def _collect(response: httpx.Response, chunks: list[bytes]) -> None:
    async for chunk in response.aiter_raw():
        chunks.append(chunk)  # noqa: PERF401 - keeps what came before the timeout


@pytest.mark.parametrize("path", [OPENAI, ANTHROPIC])
async def test_stall_holds_the_connection_until_the_client_leaves(
    upstream: FaultUpstream, client: httpx.AsyncClient, path: str
) -> None:
    upstream.script = stall_after(3)

    raw = await _read_until_quiet(client, path)

    assert raw.count(" t") == 3
    assert "[DONE]" not in raw
    assert "message_delta" not in raw
    await upstream.wait_idle()
    assert upstream.sent == [3]


@pytest.mark.parametrize("path", [OPENAI, ANTHROPIC])
async def test_stall_before_the_first_token_sends_only_the_headers(
    upstream: FaultUpstream, client: httpx.AsyncClient, path: str
) -> None:
    upstream.script = stall_after(0)

    raw = await _read_until_quiet(client, path)

    assert raw == ""
    await upstream.wait_idle()


@pytest.mark.parametrize("path", [OPENAI, ANTHROPIC])
async def test_malformed_event_follows_k_tokens_and_the_connection_stays_open(
    upstream: FaultUpstream, client: httpx.AsyncClient, path: str
) -> None:
    upstream.script = malformed_after(1)

    raw = await _read_until_quiet(client, path)

    assert raw.count(" t") == 1
    assert raw.endswith("data: {not json\n\n")
    await upstream.wait_idle()


async def test_slow_sends_every_token_with_a_delay_between(
    upstream: FaultUpstream, client: httpx.AsyncClient
) -> None:
    upstream.script = slow(0.05)
    loop = asyncio.get_running_loop()
    began = loop.time()

    _, events = await _post(client, OPENAI)

    assert _openai_text(events) == " t0 t1 t2 t3 t4"
    assert loop.time() - began >= 5 * 0.05


async def test_script_list_is_consumed_one_per_request_and_the_last_repeats(
    upstream: FaultUpstream, client: httpx.AsyncClient
) -> None:
    upstream.script = [status(500), drop_after(1), OK]

    codes = [(await client.post(OPENAI, json={"messages": QUESTION})).status_code for _ in range(4)]

    assert codes == [500, 200, 200, 200]
    assert upstream.sent == [0, 1, 5, 5]
    await upstream.wait_closed(4)


async def test_script_function_gets_the_request_index(
    upstream: FaultUpstream, client: httpx.AsyncClient
) -> None:
    def script(index: int) -> Fault:
        return status(503) if index % 2 else OK

    upstream.script = script
    codes = [
        (await client.post(ANTHROPIC, json={"messages": QUESTION})).status_code for _ in range(3)
    ]

    assert codes == [200, 503, 200]


async def test_unknown_path_is_404_and_not_recorded(
    upstream: FaultUpstream, client: httpx.AsyncClient
) -> None:
    response = await client.post("completions", json={})

    assert response.status_code == 404
    assert upstream.requests == []


async def test_stop_ends_stalled_connections(upstream: FaultUpstream) -> None:
    upstream.script = stall_after(1)
    async with (
        httpx.AsyncClient(base_url=upstream.base_url, timeout=2) as client,
        client.stream("POST", OPENAI, json={"messages": QUESTION}) as response,
    ):
        assert upstream.open_connections == 1
        await upstream.stop()
        raw = await response.aread()

    assert raw.decode().count(" t") == 1
    assert upstream.open_connections == 0


async def test_closed_port_refuses_connections() -> None:
    async with httpx.AsyncClient(base_url=closed_port_url(), timeout=2) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(OPENAI, json={})
