"""API keys and TLS, against an in-process server that records what each call carried.

The server is ``tests/clients/recording.py``: it records the ``authorization``
metadata and the TLS peer of every call and can refuse calls with a status,
as the server's auth interceptor does. The certificates come from a
throwaway authority (``tests/certs.py``) made per module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from llmrouter import TLS, Client, RouterError, open_channel
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from tests.certs import Authority, Issued
from tests.clients.recording import RecordingRouter, serving

pytestmark = pytest.mark.timeout(30)

KEY = "k-3f9a"
"""The API key the tests send."""


@pytest.fixture(scope="module")
def authority() -> Authority:
    """The authority the server's and the client's certificates come from."""
    return Authority("llmrouter test CA")


@pytest.fixture(scope="module")
def server_cert(authority: Authority) -> Issued:
    """A server certificate for 127.0.0.1 and localhost."""
    return authority.server("llmrouter server")


@pytest.fixture
def router() -> RecordingRouter:
    """A recording servicer that answers every call."""
    return RecordingRouter()


async def generate_text(client: Client) -> str:
    """The text of one generation, read to its end."""
    return (await client.generate("hi").result()).text


async def test_the_key_goes_with_unary_and_streaming_calls(router: RecordingRouter) -> None:
    async with serving(router) as address, Client(address, api_key=KEY) as client:
        routes = await client.list_models()
        text = await generate_text(client)

    assert [route.name for route in routes] == ["fake"]
    assert text == "hi"
    assert router.keys == [("ListModels", [f"Bearer {KEY}"]), ("Generate", [f"Bearer {KEY}"])]
    assert [security for security, _ in router.peers] == ["insecure", "insecure"]


async def test_the_key_goes_with_calls_through_the_generated_stub(router: RecordingRouter) -> None:
    async with serving(router) as address, Client(address, api_key=KEY) as client:
        await client.stub.ListModels(svc_pb.ListModelsRequest(), metadata=(("x-trace", "1"),))

    assert router.keys == [("ListModels", [f"Bearer {KEY}"])]


async def test_without_a_key_no_authorization_is_sent(router: RecordingRouter) -> None:
    async with serving(router) as address, Client(address) as client:
        await client.list_models()
        await generate_text(client)

    assert router.keys == [("ListModels", []), ("Generate", [])]


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED]
)
async def test_a_refused_key_is_a_router_error_with_its_code(
    router: RecordingRouter, code: grpc.StatusCode
) -> None:
    router.refusal = (code, "the key is not allowed")

    async with serving(router) as address, Client(address, api_key=KEY) as client:
        with pytest.raises(RouterError) as unary:
            await client.list_models()
        with pytest.raises(RouterError) as streaming:
            await generate_text(client)

    for raised in (unary, streaming):
        assert (raised.value.code, raised.value.message) == (code, "the key is not allowed")


async def test_tls_with_the_authority_as_root(
    router: RecordingRouter, authority: Authority, server_cert: Issued
) -> None:
    tls = TLS(ca=authority.cert)

    async with (
        serving(router, cert=server_cert) as address,
        Client(address, api_key=KEY, tls=tls) as client,
    ):
        await client.list_models()
        text = await generate_text(client)

    assert text == "hi"
    assert router.keys == [("ListModels", [f"Bearer {KEY}"]), ("Generate", [f"Bearer {KEY}"])]
    assert router.peers == [("ssl", []), ("ssl", [])]


async def test_mutual_tls_presents_the_client_certificate(
    router: RecordingRouter, authority: Authority, server_cert: Issued
) -> None:
    client = authority.client("client-7")
    tls = TLS(ca=authority.cert, cert=client.cert, key=client.key)

    async with (
        serving(router, cert=server_cert, client_ca=authority.cert) as address,
        Client(address, tls=tls) as client,
    ):
        await client.list_models()

    assert router.peers == [("ssl", ["client-7"])]


async def test_mutual_tls_without_a_client_certificate_fails(
    router: RecordingRouter, authority: Authority, server_cert: Issued
) -> None:
    async with (
        serving(router, cert=server_cert, client_ca=authority.cert) as address,
        Client(address, tls=TLS(ca=authority.cert)) as client,
    ):
        with pytest.raises(RouterError) as raised:
            await client.list_models()

    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert router.keys == []


async def test_a_server_from_another_authority_is_not_trusted(
    router: RecordingRouter, server_cert: Issued
) -> None:
    other = Authority("another CA")

    async with (
        serving(router, cert=server_cert) as address,
        Client(address, tls=TLS(ca=other.cert)) as client,
    ):
        with pytest.raises(RouterError) as raised:
            await client.list_models()

    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert router.keys == []


async def test_server_name_names_the_host_the_certificate_must_carry(
    router: RecordingRouter, authority: Authority
) -> None:
    cert = authority.server("llmrouter server", dns=["router.internal"], ips=[])
    named = TLS(ca=authority.cert, server_name="router.internal")

    async with serving(router, cert=cert) as address:
        async with Client(address, tls=TLS(ca=authority.cert)) as client:
            with pytest.raises(RouterError) as raised:
                await client.list_models()
        async with Client(address, tls=named) as client:
            await client.list_models()

    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert router.peers == [("ssl", [])]


async def test_open_channel_carries_the_key_for_other_stubs(router: RecordingRouter) -> None:
    async with serving(router) as address, open_channel(address, api_key=KEY) as channel:
        await svc_grpc.RouterServiceStub(channel).ListModels(svc_pb.ListModelsRequest())

    assert router.keys == [("ListModels", [f"Bearer {KEY}"])]


def test_tls_from_files_reads_the_pem_files(tmp_path: Path, authority: Authority) -> None:
    client = authority.client("client-7")
    files = [("ca.pem", authority.cert), ("cert.pem", client.cert), ("key.pem", client.key)]
    for name, data in files:
        (tmp_path / name).write_bytes(data)

    tls = TLS.from_files(
        tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem", server_name="r"
    )

    assert tls == TLS(ca=authority.cert, cert=client.cert, key=client.key, server_name="r")
    assert TLS.from_files() == TLS()


def test_tls_leaves_the_private_key_out_of_its_repr(authority: Authority) -> None:
    client = authority.client("client-7")

    text = repr(TLS(cert=client.cert, key=client.key))

    assert "PRIVATE KEY" not in text
    assert "key=" not in text


@pytest.mark.parametrize(("cert", "key"), [(b"cert", None), (None, b"key")])
def test_tls_needs_both_cert_and_key_or_neither(cert: bytes | None, key: bytes | None) -> None:
    with pytest.raises(ValueError, match="both cert and key"):
        TLS(cert=cert, key=key)


@pytest.mark.parametrize("key", ["", "two words", "trailing-newline\n", "caf\u00e9"])
def test_a_key_that_cannot_be_metadata_is_refused_without_showing_it(key: str) -> None:
    with pytest.raises(ValueError, match="printable ASCII") as raised:
        Client("127.0.0.1:1", api_key=key)

    assert key.strip() == "" or key.strip() not in str(raised.value)


@pytest.mark.parametrize("options", [{"api_key": KEY}, {"tls": TLS()}], ids=["api_key", "tls"])
async def test_a_channel_of_ones_own_takes_no_key_or_tls(options: dict[str, Any]) -> None:
    async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:
        with pytest.raises(TypeError, match="open_channel"):
            Client(channel=channel, **options)
