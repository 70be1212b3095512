"""Retries and fallbacks as the Python client sees them.

A route whose only target is an OpenAI-compatible backend on a loopback port
nobody listens on fails every attempt; ``llmrouter serve`` then ends the call
with UNAVAILABLE and a ``RouteFailure`` detail listing the attempts. A scripted
server checks that a RESTART fallback drops the text received before it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from llmrouter import Client
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from tests.backends.upstream import free_port
from tests.clients.helpers import until_failure
from tests.helpers import kinds
from tests.serve_process import llmrouter_serve

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

DOWN_CONFIG = """\
backends:
  down: {{kind: openai, base_url: "http://127.0.0.1:{port}/v1", api_key_env: null}}
routes:
  down:
    targets: [{{backend: down, model: m}}]
    max_attempts: 2
    retry: {{initial_backoff_seconds: 0.01, max_backoff_seconds: 0.02}}
default_route: down
"""


@pytest.fixture(scope="module")
def down_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``llmrouter serve`` with only the route ``down``, whose backend refuses connections."""
    config = tmp_path_factory.mktemp("config") / "down.yaml"
    config.write_text(DOWN_CONFIG.format(port=free_port()), encoding="utf-8")
    with llmrouter_serve(LLMROUTER_CONFIG=str(config)) as address:
        yield address


async def test_a_route_out_of_attempts_raises_every_attempt(down_address: str) -> None:
    async with Client(down_address) as client:
        events, error = await until_failure(aiter(client.generate("hi", model="down")))

    assert kinds(events) == ["started", "attempt_failed", "fallback_used", "attempt_failed"]
    assert error.code == grpc.StatusCode.UNAVAILABLE
    assert error.reason == "BACKEND_CONNECT"
    assert error.error_info.metadata["attempts"] == "2"
    assert error.route_failure is not None
    attempts = error.attempts
    assert [(a.attempt, a.error_reason, a.will_retry) for a in attempts] == [
        (1, "BACKEND_CONNECT", True),
        (2, "BACKEND_CONNECT", False),
    ]
    assert [(a.backend, a.model, a.target, a.http_status, a.tokens) for a in attempts] == [
        ("down", "m", 0, 0, 0)
    ] * 2
    assert [event.attempt_failed.attempt for event in (events[1], events[3])] == [1, 2]
    fallback = events[2].fallback_used
    assert (fallback.from_backend, fallback.backend, fallback.to_target) == ("down", "down", 0)


class RestartingServicer(svc_grpc.RouterServiceServicer):
    """Streams "Once", falls back with RESTART, then streams "Twice" and completes."""

    async def Generate(  # type: ignore[override]  # noqa: N802 - the RPC's name
        self, request_iterator: AsyncIterator[svc_pb.GenerateRequest], context: Any
    ) -> AsyncIterator[svc_pb.GenerateResponse]:
        await anext(request_iterator)
        restart = ev_pb.FallbackUsed(action=gen_pb.MID_STREAM_ACTION_RESTART, to_target=1)
        script = [
            ev_pb.StreamEvent(started=ev_pb.Started()),
            ev_pb.StreamEvent(chunk=ev_pb.Chunk(text="Once")),
            ev_pb.StreamEvent(attempt_failed=ev_pb.AttemptFailed(attempt=1, will_retry=True)),
            ev_pb.StreamEvent(fallback_used=restart),
            ev_pb.StreamEvent(chunk=ev_pb.Chunk(text="Twice")),
            ev_pb.StreamEvent(completed=ev_pb.Completed(finish_reason=ev_pb.FINISH_REASON_STOP)),
        ]
        for offset, event in enumerate(script):
            event.stream_id, event.offset = "gen-1", offset
            yield svc_pb.GenerateResponse(event=event)


@pytest.fixture
async def restarting() -> AsyncIterator[str]:
    """The scripted server on a loopback port."""
    server = grpc.aio.server()
    svc_grpc.add_RouterServiceServicer_to_server(RestartingServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def test_a_restart_fallback_drops_the_text_before_it(restarting: str) -> None:
    async with Client(restarting) as client:
        generation = client.generate("hi")
        events = [event async for event in generation]
        result = await client.generate("hi").result()
        chat = client.chat()
        reply = await chat.ask("hi")

    assert kinds(events) == [
        "started",
        "chunk",
        "attempt_failed",
        "fallback_used",
        "chunk",
        "completed",
    ]
    assert generation.text == result.text == reply == "Twice"
    assert [message.content for message in chat.messages] == ["hi", "Twice"]
