"""Metrics of real generations through gRPC, read with the SDK's in-memory reader."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from llmrouter_server.backends.scripted import ScriptedBackend, Step
from llmrouter_server.errors import BackendStatusError
from tests.helpers import cancel, generate, loopback_config, scripted_config, start
from tests.telemetry.otel_serving import Observed, labels, observed

pytestmark = pytest.mark.timeout(20)

S = labels(route="s-model", backend="s")
ROUTE = labels(route="s-model")


def _circuit(target: str, current: str) -> dict[frozenset[tuple[str, str]], float]:
    return {
        labels(target=target, state=state): int(state == current)
        for state in ("closed", "open", "half_open")
    }


async def _cancel_after_first_chunk(server: Observed) -> None:
    call: Any = server.stub.Generate()
    await call.write(start())
    while not (await call.read()).event.HasField("chunk"):
        pass
    await call.write(cancel())
    while not (await call.read()).event.HasField("completed"):
        pass


async def test_a_completed_generation() -> None:
    backend = ScriptedBackend("s", [Step(" a"), Step(" b"), Step(" c")])
    async with observed(scripted_config("s"), {"s": backend}) as server:
        await generate(server.stub, start())
        assert server.sums("llmrouter.streams.started") == {S: 1}
        assert server.sums("llmrouter.streams.completed") == {S: 1}
        assert server.sums("llmrouter.streams.failed") == {}
        assert server.sums("llmrouter.streams.cancelled") == {}
        assert server.sums("llmrouter.output_tokens") == {S: 3}
        assert server.counts("llmrouter.time_to_first_token") == {S: 1}
        assert server.counts("llmrouter.inter_token_latency") == {S: 2}
        assert server.counts("llmrouter.queue_wait") == {ROUTE: 1}
        assert server.sums("llmrouter.streams.queued") == {ROUTE: 0}
        assert server.sums("llmrouter.streams.active") == {ROUTE: 0}
        assert server.sums("llmrouter.subscribers") == {ROUTE: 0}
        assert server.sums("llmrouter.attempts") == {S: 1}
        assert server.sums("llmrouter.attempt_failures") == {}
        assert server.sums("llmrouter.fallbacks") == {}
        assert server.sums("llmrouter.circuit.state") == _circuit("s/m", "closed")


async def test_a_running_generation_is_active_with_one_subscriber() -> None:
    backend = ScriptedBackend("s", [Step(" a"), Step(stall=True)])
    async with observed(scripted_config("s"), {"s": backend}) as server:
        call: Any = server.stub.Generate()
        await call.write(start())
        while not (await call.read()).event.HasField("chunk"):
            pass
        assert server.sums("llmrouter.streams.active") == {ROUTE: 1}
        assert server.sums("llmrouter.streams.queued") == {ROUTE: 0}
        assert server.sums("llmrouter.subscribers") == {ROUTE: 1}
        await call.write(cancel())
        while not (await call.read()).event.HasField("completed"):
            pass
        assert server.sums("llmrouter.streams.active") == {ROUTE: 0}
        assert server.sums("llmrouter.streams.cancelled") == {
            labels(route="s-model", backend="s", cancelled_by="caller"): 1
        }
        assert server.sums("llmrouter.streams.completed") == {}
        assert server.sums("llmrouter.output_tokens") == {S: 1}
        assert server.counts("llmrouter.time_to_first_token") == {S: 1}
        assert server.counts("llmrouter.inter_token_latency") == {}


async def test_a_queued_generation_counts_as_queued_until_its_attempt() -> None:
    backend = ScriptedBackend("s", [Step(" a"), Step(stall=True)], max_concurrency=1)
    async with observed(scripted_config("s"), {"s": backend}) as server:
        first: Any = server.stub.Generate()
        await first.write(start())
        while not (await first.read()).event.HasField("chunk"):
            pass
        second: Any = server.stub.Generate()
        await second.write(start())
        while not (await second.read()).event.HasField("queued"):
            pass
        assert server.sums("llmrouter.streams.queued") == {ROUTE: 1}
        assert server.sums("llmrouter.streams.active") == {ROUTE: 1}
        assert server.counts("llmrouter.queue_wait") == {ROUTE: 1}
        await first.write(cancel())
        while not (await second.read()).event.HasField("chunk"):
            pass
        assert server.sums("llmrouter.streams.queued") == {ROUTE: 0}
        assert server.sums("llmrouter.streams.active") == {ROUTE: 1}
        assert server.counts("llmrouter.queue_wait") == {ROUTE: 2}
        await second.write(cancel())
        while not (await second.read()).event.HasField("completed"):
            pass


async def test_a_failed_generation() -> None:
    refusal = BackendStatusError("s", 400, "bad request")
    backend = ScriptedBackend("s", [Step(error=refusal)])
    async with observed(scripted_config("s"), {"s": backend}) as server:
        with pytest.raises(grpc.aio.AioRpcError):
            await generate(server.stub, start())
        assert server.sums("llmrouter.streams.started") == {S: 1}
        assert server.sums("llmrouter.streams.failed") == {
            labels(route="s-model", backend="s", reason="BACKEND_STATUS"): 1
        }
        assert server.sums("llmrouter.attempts") == {S: 1}
        assert server.sums("llmrouter.attempt_failures") == {
            labels(route="s-model", backend="s", reason="BACKEND_STATUS"): 1
        }
        assert server.sums("llmrouter.output_tokens") == {}
        assert server.counts("llmrouter.time_to_first_token") == {}
        assert server.sums("llmrouter.streams.active") == {ROUTE: 0}


async def test_a_fallback_counts_both_attempts_and_the_outcome_on_the_last_backend() -> None:
    first = ScriptedBackend("a", [Step(error=BackendStatusError("a", 503, "busy"))])
    second = ScriptedBackend("b", [Step(" x"), Step(" y")])
    targets = [{"backend": "a", "model": "m"}, {"backend": "b", "model": "n"}]
    config = loopback_config(
        backends={name: {"kind": "openai", "api_key_env": None} for name in ("a", "b")},
        routes={"both": {"targets": targets}},
        default_route="both",
    )
    async with observed(config, {"a": first, "b": second}) as server:
        await generate(server.stub, start())
        assert server.sums("llmrouter.streams.started") == {labels(route="both", backend="a"): 1}
        assert server.sums("llmrouter.streams.completed") == {labels(route="both", backend="b"): 1}
        assert server.sums("llmrouter.attempts") == {
            labels(route="both", backend="a"): 1,
            labels(route="both", backend="b"): 1,
        }
        assert server.sums("llmrouter.attempt_failures") == {
            labels(route="both", backend="a", reason="BACKEND_STATUS"): 1
        }
        assert server.sums("llmrouter.fallbacks") == {
            labels(route="both", backend="a", to_backend="b", action="continue"): 1
        }
        assert server.sums("llmrouter.output_tokens") == {labels(route="both", backend="b"): 2}
        assert server.sums("llmrouter.circuit.state") == {
            **_circuit("a/m", "closed"),
            **_circuit("b/n", "closed"),
        }


async def test_an_open_circuit_shows_in_the_circuit_gauge() -> None:
    backend = ScriptedBackend("s", [Step(error=BackendStatusError("s", 503, "down"))])
    breaker = {"failure_threshold": 1, "cooldown_seconds": 60}
    config = loopback_config(
        backends={"s": {"kind": "openai", "api_key_env": None, "circuit_breaker": breaker}},
        routes={"s-model": {"targets": [{"backend": "s", "model": "m"}], "max_attempts": 1}},
        default_route="s-model",
    )
    async with observed(config, {"s": backend}) as server:
        with pytest.raises(grpc.aio.AioRpcError):
            await generate(server.stub, start())
        assert server.sums("llmrouter.circuit.state") == _circuit("s/m", "open")
