"""Client commands against a real ``llmrouter serve`` and against other gRPC servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2

# The asyncio servicer, which the package also exposes untyped as ``health.aio``.
from grpc_health.v1._async import HealthServicer

from tests.cli.process import RECONNECT, run_cli
from tests.serve_process import llmrouter_serve

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def llmrouter() -> Iterator[str]:
    """``llmrouter serve`` with the default configuration on a loopback port."""
    with llmrouter_serve() as address:
        yield address


@pytest.fixture
async def health_without_list() -> AsyncIterator[str]:
    """A gRPC server on loopback whose health service has Check but not List, as before 1.70."""
    servicer = HealthServicer()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    check = grpc.unary_unary_rpc_method_handler(
        servicer.Check,
        request_deserializer=health_pb2.HealthCheckRequest.FromString,
        response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": check})]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


def test_health_of_the_server_is_serving(llmrouter: str) -> None:
    result = run_cli("health", "--address", llmrouter)

    assert (result.returncode, result.stdout, result.stderr) == (0, "SERVING\n", "")


def test_an_unknown_health_service_lists_the_known_ones(llmrouter: str) -> None:
    result = run_cli("health", "--service", "nope", "--address", llmrouter)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "llmrouter: no health status for service 'nope' "
        '(known: "", llmrouter.v1.RouterService, smollm2-135m-instruct)\n'
    )


async def test_without_health_list_the_message_says_what_to_give(health_without_list: str) -> None:
    command = ["health", "--service", "nope", "--address", health_without_list]

    result = await asyncio.to_thread(run_cli, *command)

    assert result.returncode == 1
    assert result.stderr == (
        "llmrouter: no health status for service 'nope'; "
        'give a route name, llmrouter.v1.RouterService, or "" for the server\n'
    )


async def test_a_server_without_the_router_service_is_named(health_without_list: str) -> None:
    result = await asyncio.to_thread(run_cli, "models", "--address", health_without_list)

    assert result.returncode == 1
    assert result.stderr == (
        f"llmrouter: {health_without_list} does not serve this call "
        f"(UNIMPLEMENTED: Method not found!); is it an llmrouter server? {RECONNECT}\n"
    )


def test_a_refused_request_names_the_status_and_the_remedy(llmrouter: str) -> None:
    command = ["generate", "hi", "--max-tokens", "0", "--address", llmrouter]

    result = run_cli(*command)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "llmrouter: INVALID_ARGUMENT: start.sampling.max_tokens: must be positive; "
        "fix that option (see 'llmrouter generate --help')\n"
    )
