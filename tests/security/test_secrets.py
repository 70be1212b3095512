"""Provider keys never leave the server: not in statuses, events, lookups or logs."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_status import rpc_status
from llmrouter.v1 import service_pb2 as svc_pb

from tests.helpers import generate, loopback_config, serving, start
from tests.routing.faults import FaultUpstream, status

pytestmark = pytest.mark.timeout(30)

KEY = "sk-test-0123456789abcdef"
ECHO = json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}", "type": "invalid"}})


@pytest.fixture
async def upstream() -> AsyncIterator[FaultUpstream]:
    refusing = FaultUpstream(4, status(401, body=ECHO))
    await refusing.start()
    yield refusing
    await refusing.stop()


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_key_the_provider_echoes_is_redacted_everywhere(
    kind: str,
    upstream: FaultUpstream,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("PROVIDER_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    config = loopback_config(
        backends={
            "p": {"kind": kind, "base_url": upstream.base_url, "api_key_env": "PROVIDER_KEY"}
        },
        routes={"r": {"targets": [{"backend": "p", "model": "m"}]}},
        default_route="r",
    )
    async with serving(config) as served:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await generate(served.stub, start())
        models = await served.stub.ListModels(svc_pb.ListModelsRequest())
        listed = await served.stub.ListStreams(svc_pb.ListStreamsRequest())
        described = await served.stub.GetStream(
            svc_pb.GetStreamRequest(stream_id=listed.streams[0].stream_id, recent_events=100)
        )

    sent = upstream.requests[0].headers
    assert KEY in (sent.get("authorization", "") + sent.get("x-api-key", ""))  # it was used
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "Incorrect API key provided: [redacted]" in caught.value.details()
    everything = [
        caught.value.details(),
        str(rpc_status.from_call(caught.value)),  # type: ignore[arg-type]
        str(models),
        str(listed),
        str(described),
        caplog.text,
    ]
    assert [KEY in text for text in everything] == [False] * len(everything)
