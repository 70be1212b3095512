"""End to end: reflection serves the contract with its .proto comments.

The server runs in-process on a loopback port; the pinned grpcurl and
grpcio-reflection's client read the contract from it with no .proto at hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from tests.e2e.grpcurl import grpcurl
from tests.helpers import loopback_config, serving

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

# Paths into a FileDescriptorProto, as SourceCodeInfo.Location.path numbers them.
_MESSAGE, _FIELD, _SERVICE, _METHOD = 4, 2, 6, 2


@pytest.fixture(scope="module")
async def address() -> AsyncIterator[str]:
    """The default configuration (the embedded model) on a loopback port."""
    async with serving(loopback_config()) as served:
        yield served.address


async def test_grpcurl_describes_a_message_with_its_comments(address: str) -> None:
    output = await grpcurl(address, "describe", "llmrouter.v1.SamplingParams")

    assert output.startswith(
        "llmrouter.v1.SamplingParams is a message:\n"
        "// SamplingParams control token selection. Unset fields use server defaults.\n"
        "message SamplingParams {\n"
        "  // Upper bound on generated tokens; must be positive and at most the server's\n"
        "  // configured cap.\n"
        "  optional int32 max_tokens = 1;\n"
        "  // Softmax temperature, 0 to 2; 0 is greedy.\n"
        "  optional float temperature = 2;\n"
    )
    assert (
        "  // Penalty proportional to token frequency, -2 to 2.\n"
        "  optional float frequency_penalty = 7;\n"
        "}\n"
    ) in output


async def test_grpcurl_describes_an_rpc_with_its_comment(address: str) -> None:
    output = await grpcurl(address, "describe", "llmrouter.v1.RouterService.Generate")

    assert output == (
        "llmrouter.v1.RouterService.Generate is a method:\n"
        "// Generate starts one generation and streams its events. The first request\n"
        "// must be `start` (or `attach`, to re-attach to a detached generation); later\n"
        "// requests on the same call steer it (credits, pause, resume, cancel). The\n"
        "// response stream carries events in offset order and ends with `completed`,\n"
        "// or with a non-OK status whose details name the reason and the last offset.\n"
        "rpc Generate ( stream .llmrouter.v1.GenerateRequest )"
        " returns ( stream .llmrouter.v1.GenerateResponse );\n"
    )


async def test_grpcurl_describes_an_enum_with_its_comments(address: str) -> None:
    output = await grpcurl(address, "describe", "llmrouter.v1.FinishReason")

    assert (
        "// FinishReason is why a generation ended.\n"
        "enum FinishReason {\n"
        "  // Not known.\n"
        "  FINISH_REASON_UNSPECIFIED = 0;\n"
    ) in output


async def test_the_reflection_client_reads_a_fields_comment(address: str) -> None:
    file = await _file_containing(address, "llmrouter.v1.SamplingParams")

    message = _index([m.name for m in file.message_type], "SamplingParams")
    field = _index([f.name for f in file.message_type[message].field], "temperature")
    path = [_MESSAGE, message, _FIELD, field]
    assert _comment(file, path) == " Softmax temperature, 0 to 2; 0 is greedy.\n"


async def test_the_reflection_client_finds_an_rpc_and_every_rpc_has_a_comment(
    address: str,
) -> None:
    file = await _file_containing(address, "llmrouter.v1.RouterService.Generate")

    assert file.name == "llmrouter/v1/service.proto"
    service = _index([s.name for s in file.service], "RouterService")
    methods = file.service[service].method
    assert len(methods) == 7
    for index, method in enumerate(methods):
        assert _comment(file, [_SERVICE, service, _METHOD, index]), method.name


async def test_the_reflection_client_gets_not_found_for_an_unknown_method(address: str) -> None:
    with pytest.raises(KeyError):
        await _file_containing(address, "llmrouter.v1.RouterService.Nope")


async def _file_containing(address: str, symbol: str) -> descriptor_pb2.FileDescriptorProto:
    """The file defining ``symbol``, asked with grpcio-reflection's (blocking) client."""

    def ask() -> descriptor_pb2.FileDescriptorProto:
        with grpc.insecure_channel(address) as channel:
            database = ProtoReflectionDescriptorDatabase(channel)
            return database.FindFileContainingSymbol(symbol)  # type: ignore[no-any-return]

    return await asyncio.to_thread(ask)


def _index(names: Sequence[str], name: str) -> int:
    assert name in names
    return list(names).index(name)


def _comment(file: descriptor_pb2.FileDescriptorProto, path: list[int]) -> str:
    """The leading comment of the element at ``path``; empty when it has none."""
    for location in file.source_code_info.location:
        if list(location.path) == path:
            return location.leading_comments
    return ""
