"""``/metrics``: Prometheus text over HTTP on the gRPC host, scraped during and after a run."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from llmrouter_server.backends.base import BackendRequest
from llmrouter_server.backends.scripted import ScriptedBackend, Step
from tests.helpers import cancel, generate, scripted_config, start
from tests.telemetry.otel_serving import observed

pytestmark = pytest.mark.timeout(20)


def _script(request: BackendRequest) -> list[Step]:
    """Two tokens; a prompt saying "hold" stalls before the second."""
    return [Step(" a"), Step(" b", stall="hold" in request.messages[-1].content)]


async def _scrape(port: int) -> list[str]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return [line for line in response.text.splitlines() if line.startswith("llmrouter_")]


async def test_metrics_are_scraped_as_prometheus_text_during_and_after_a_run() -> None:
    backend = ScriptedBackend("s", _script)
    config = scripted_config("s", telemetry={"metrics_port": 0})
    async with observed(config, {"s": backend}, in_memory=False) as server:
        port = server.telemetry.metrics_port
        assert port
        call: Any = server.stub.Generate()
        await call.write(start("hold"))
        while not (await call.read()).event.HasField("chunk"):
            pass
        during = await _scrape(port)
        await call.write(cancel())
        while not (await call.read()).event.HasField("completed"):
            pass
        await generate(server.stub, start("go"))
        after = await _scrape(port)
    assert 'llmrouter_streams_active{route="s-model"} 1.0' in during
    assert 'llmrouter_subscribers{route="s-model"} 1.0' in during
    assert 'llmrouter_streams_started_total{backend="s",route="s-model"} 1.0' in during
    assert sorted(line for line in after if line.startswith("llmrouter_streams")) == [
        'llmrouter_streams_active{route="s-model"} 0.0',
        'llmrouter_streams_cancelled_total{backend="s",cancelled_by="caller",route="s-model"} 1.0',
        'llmrouter_streams_completed_total{backend="s",route="s-model"} 1.0',
        'llmrouter_streams_queued{route="s-model"} 0.0',
        'llmrouter_streams_started_total{backend="s",route="s-model"} 2.0',
    ]
    assert 'llmrouter_output_tokens_total{backend="s",route="s-model"} 3.0' in after
    assert 'llmrouter_time_to_first_token_seconds_count{backend="s",route="s-model"} 2.0' in after
    assert 'llmrouter_inter_token_latency_seconds_count{backend="s",route="s-model"} 1.0' in after
    assert 'llmrouter_queue_wait_seconds_count{route="s-model"} 2.0' in after
    assert 'llmrouter_attempts_total{backend="s",route="s-model"} 2.0' in after
    assert 'llmrouter_circuit_state{state="closed",target="s/m"} 1.0' in after
    assert 'llmrouter_circuit_state{state="open",target="s/m"} 0.0' in after
    with pytest.raises(httpx.ConnectError):  # the port closed with the server
        await _scrape(port)


async def test_no_metrics_port_serves_nothing() -> None:
    async with observed(scripted_config("s"), {"s": ScriptedBackend("s", [])}) as server:
        assert server.telemetry.metrics_port is None


async def test_metrics_host_binds_metrics_apart_from_grpc() -> None:
    backend = ScriptedBackend("s", _script)
    config = scripted_config("s", telemetry={"metrics_port": 0, "metrics_host": "127.0.0.2"})
    async with observed(config, {"s": backend}, in_memory=False) as server:
        port = server.telemetry.metrics_port
        async with httpx.AsyncClient(timeout=5) as client:
            served = await client.get(f"http://127.0.0.2:{port}/metrics")
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/metrics")

    assert served.status_code == 200
