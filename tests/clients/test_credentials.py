"""API keys and TLS, against an in-process server that records what each call carried.

The server side of authentication is not wired yet, so a scripted servicer
stands in for it: it records the ``authorization`` metadata and the TLS peer
of every call and can refuse calls with a status, as the real server's auth
interceptor will. The certificates come from a throwaway authority made per
module. ``tests/cli/test_credentials.py`` reuses these helpers.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from llmrouter import TLS, Client, RouterError, open_channel
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

pytestmark = pytest.mark.timeout(30)

KEY = "k-3f9a"
"""The API key the tests send."""


class Authority:
    """A throwaway certificate authority that issues leaf certificates.

    Attributes:
        pem: The authority's certificate, the root clients and servers trust.
    """

    def __init__(self, name: str) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = _certificate(self._name, self._name, self._key.public_key())
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        self._cert = builder.sign(self._key, hashes.SHA256())
        self.pem = self._cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self, common_name: str, *, dns: Sequence[str] = (), ips: Sequence[str] = ()
    ) -> tuple[bytes, bytes]:
        """A certificate for servers and clients alike, and its key, both PEM."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = _certificate(subject, self._name, key.public_key())
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), False)
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), False)
        cert = builder.sign(self._key, hashes.SHA256())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _certificate(subject: x509.Name, issuer: x509.Name, public_key: Any) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )


class RecordingRouter(svc_grpc.RouterServiceServicer):
    """Answers ListModels and Generate, recording what every call carried.

    Attributes:
        keys: Per call, the method name and its ``authorization`` values.
        peers: Per call, the TLS peer: transport security type and client certificate
            common names.
        refusal: A status every call ends with after it is recorded, or None.
    """

    def __init__(self) -> None:
        self.keys: list[tuple[str, list[str]]] = []
        self.peers: list[tuple[str, list[str]]] = []
        self.refusal: tuple[grpc.StatusCode, str] | None = None

    async def ListModels(  # type: ignore[override]  # noqa: N802 - the RPC's name
        self, request: svc_pb.ListModelsRequest, context: Any
    ) -> svc_pb.ListModelsResponse:
        await self._record("ListModels", context)
        return svc_pb.ListModelsResponse(routes=[ops_pb.Route(name="fake", is_default=True)])

    async def Generate(  # type: ignore[override]  # noqa: N802 - the RPC's name
        self, request_iterator: AsyncIterator[svc_pb.GenerateRequest], context: Any
    ) -> AsyncIterator[svc_pb.GenerateResponse]:
        await self._record("Generate", context)
        await anext(request_iterator)
        completed = ev_pb.Completed(finish_reason=ev_pb.FINISH_REASON_STOP)
        yield svc_pb.GenerateResponse(event=ev_pb.StreamEvent(chunk=ev_pb.Chunk(text="hi")))
        yield svc_pb.GenerateResponse(event=ev_pb.StreamEvent(offset=1, completed=completed))

    async def _record(self, method: str, context: Any) -> None:
        metadata = context.invocation_metadata() or ()
        self.keys.append((method, [value for key, value in metadata if key == "authorization"]))
        auth = context.auth_context()
        security = b"".join(auth.get("transport_security_type", [])).decode()
        names = [name.decode() for name in auth.get("x509_common_name", [])]
        self.peers.append((security, names))
        if self.refusal is not None:
            await context.abort(*self.refusal)


@asynccontextmanager
async def serving(
    servicer: svc_grpc.RouterServiceServicer,
    *,
    cert: tuple[bytes, bytes] | None = None,
    client_ca: bytes | None = None,
) -> AsyncIterator[str]:
    """Serves ``servicer`` on a loopback port; yields ``127.0.0.1:PORT``.

    Args:
        servicer: The service.
        cert: The server's certificate and key (PEM) for TLS; None serves plaintext.
        client_ca: With ``cert``, the root client certificates must chain to:
            every client must present one (mutual TLS).
    """
    server = grpc.aio.server()
    svc_grpc.add_RouterServiceServicer_to_server(servicer, server)
    if cert is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        credentials = grpc.ssl_server_credentials(
            [(cert[1], cert[0])],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@pytest.fixture(scope="module")
def authority() -> Authority:
    """The authority the server's and the client's certificates come from."""
    return Authority("llmrouter test CA")


@pytest.fixture(scope="module")
def server_cert(authority: Authority) -> tuple[bytes, bytes]:
    """A server certificate for 127.0.0.1 and localhost."""
    return authority.issue("llmrouter server", dns=["localhost"], ips=["127.0.0.1"])


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
    router: RecordingRouter, authority: Authority, server_cert: tuple[bytes, bytes]
) -> None:
    tls = TLS(ca=authority.pem)

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
    router: RecordingRouter, authority: Authority, server_cert: tuple[bytes, bytes]
) -> None:
    cert, key = authority.issue("client-7")
    tls = TLS(ca=authority.pem, cert=cert, key=key)

    async with (
        serving(router, cert=server_cert, client_ca=authority.pem) as address,
        Client(address, tls=tls) as client,
    ):
        await client.list_models()

    assert router.peers == [("ssl", ["client-7"])]


async def test_mutual_tls_without_a_client_certificate_fails(
    router: RecordingRouter, authority: Authority, server_cert: tuple[bytes, bytes]
) -> None:
    async with (
        serving(router, cert=server_cert, client_ca=authority.pem) as address,
        Client(address, tls=TLS(ca=authority.pem)) as client,
    ):
        with pytest.raises(RouterError) as raised:
            await client.list_models()

    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert router.keys == []


async def test_a_server_from_another_authority_is_not_trusted(
    router: RecordingRouter, server_cert: tuple[bytes, bytes]
) -> None:
    other = Authority("another CA")

    async with (
        serving(router, cert=server_cert) as address,
        Client(address, tls=TLS(ca=other.pem)) as client,
    ):
        with pytest.raises(RouterError) as raised:
            await client.list_models()

    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert router.keys == []


async def test_server_name_names_the_host_the_certificate_must_carry(
    router: RecordingRouter, authority: Authority
) -> None:
    cert = authority.issue("llmrouter server", dns=["router.internal"])
    named = TLS(ca=authority.pem, server_name="router.internal")

    async with serving(router, cert=cert) as address:
        async with Client(address, tls=TLS(ca=authority.pem)) as client:
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
    cert, key = authority.issue("client-7")
    for name, data in [("ca.pem", authority.pem), ("cert.pem", cert), ("key.pem", key)]:
        (tmp_path / name).write_bytes(data)

    tls = TLS.from_files(
        tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem", server_name="r"
    )

    assert tls == TLS(ca=authority.pem, cert=cert, key=key, server_name="r")
    assert TLS.from_files() == TLS()


def test_tls_leaves_the_private_key_out_of_its_repr(authority: Authority) -> None:
    cert, key = authority.issue("client-7")

    text = repr(TLS(cert=cert, key=key))

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
