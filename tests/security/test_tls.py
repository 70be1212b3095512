"""TLS and mutual TLS on the gRPC port: who gets through, and start-up errors.

Certificates are made per test (``tests.certs``); the server runs
in-process on a loopback port with a scripted backend, and every client is
the generated stub on a secure channel of its own (its own connection).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization

from llmrouter_server.app import RunningServer
from llmrouter_server.config import Config
from llmrouter_server.errors import ConfigError
from llmrouter_server.transport import EXPOSED_WARNING, ServerTLS, describe, exposure_warning
from tests.certs import Authority, Issued
from tests.helpers import loopback_config, serving
from tests.security.helpers import (
    PKI,
    answer,
    plaintext_channel,
    refused,
    tls_channel,
    tls_config,
)
from tests.security.scripted import ANSWER, backends

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
async def tls_server(pki: PKI) -> AsyncIterator[RunningServer]:
    async with serving(tls_config(pki.files), backends()) as served:
        yield served.server


@pytest.fixture
async def mtls_server(pki: PKI) -> AsyncIterator[RunningServer]:
    async with serving(tls_config(pki.files, mutual=True), backends()) as served:
        yield served.server


async def test_a_client_trusting_the_ca_gets_the_exact_text(
    tls_server: RunningServer, pki: PKI
) -> None:
    async with tls_channel(tls_server.port, pki.server_ca.cert) as channel:
        assert await answer(channel) == ANSWER


async def test_a_plaintext_client_is_refused_unavailable(tls_server: RunningServer) -> None:
    async with plaintext_channel(tls_server.port) as channel:
        assert await refused(channel) == grpc.StatusCode.UNAVAILABLE


async def test_a_client_trusting_another_ca_is_refused_unavailable(
    tls_server: RunningServer, pki: PKI
) -> None:
    async with tls_channel(tls_server.port, pki.stranger.cert) as channel:
        assert await refused(channel) == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_lets_a_client_with_a_certificate_from_the_client_ca_in(
    mtls_server: RunningServer, pki: PKI
) -> None:
    async with tls_channel(mtls_server.port, pki.server_ca.cert, pki.client_ca.client("a")) as ch:
        assert await answer(ch) == ANSWER


async def test_mutual_tls_refuses_a_client_without_a_certificate(
    mtls_server: RunningServer, pki: PKI
) -> None:
    async with tls_channel(mtls_server.port, pki.server_ca.cert) as channel:
        assert await refused(channel) == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_refuses_a_certificate_from_another_ca(
    mtls_server: RunningServer, pki: PKI
) -> None:
    stranger = pki.stranger.client("a")
    async with tls_channel(mtls_server.port, pki.server_ca.cert, stranger) as channel:
        assert await refused(channel) == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_refuses_a_server_certificate_offered_as_a_client_one(
    mtls_server: RunningServer, pki: PKI
) -> None:
    # Signed by the server CA, which the port does not trust for clients.
    server_pair = Issued(pki.files.cert.read_bytes(), pki.files.key.read_bytes())
    async with tls_channel(mtls_server.port, pki.server_ca.cert, server_pair) as channel:
        assert await refused(channel) == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_gives_the_certificate_name_to_auth(pki: PKI) -> None:
    known = {"common_name": "alice", "tenant": "team-a"}
    config = tls_config(pki.files, mutual=True, auth={"client_certificates": [known]})
    async with serving(config, backends()) as served:
        port, root = served.server.port, pki.server_ca.cert
        async with tls_channel(port, root, pki.client_ca.client("alice")) as channel:
            assert await answer(channel) == ANSWER
        async with tls_channel(port, root, pki.client_ca.client("mallory")) as channel:
            assert await refused(channel) == grpc.StatusCode.UNAUTHENTICATED


async def _start_error(config: Config) -> str:
    with pytest.raises(ConfigError) as raised:
        async with serving(config, backends()):
            pass
    return str(raised.value)


async def test_a_missing_certificate_stops_start_up_naming_the_key(
    pki: PKI, tmp_path: Path
) -> None:
    pki.files.cert = tmp_path / "absent.crt"

    message = await _start_error(tls_config(pki.files))

    assert message == f"tls.cert_file: cannot read {pki.files.cert}: No such file or directory"


async def test_a_key_that_does_not_match_the_certificate_stops_start_up(
    pki: PKI, tmp_path: Path
) -> None:
    _, pki.files.key = Authority("other").server().write(tmp_path, "other")

    message = await _start_error(tls_config(pki.files))

    assert message == (
        f"tls.key_file: {pki.files.key} does not match the certificate in "
        f"tls.cert_file ({pki.files.cert})"
    )


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("cert", "tls.cert_file: {path} holds no PEM certificate"),
        ("key", "tls.key_file: {path} holds no PEM private key"),
        ("client_ca", "tls.client_ca_file: {path} holds no PEM certificate"),
    ],
)
def test_a_file_that_is_not_pem_stops_start_up_naming_the_key(
    pki: PKI, broken: str, message: str
) -> None:
    path: Path = getattr(pki.files, broken)
    path.write_bytes(b"not PEM\n")
    tls = tls_config(pki.files, mutual=True).tls
    assert tls is not None

    with pytest.raises(ConfigError) as raised:
        ServerTLS(tls)

    assert str(raised.value) == message.format(path=path)


def test_an_encrypted_key_stops_start_up_naming_the_key(pki: PKI) -> None:
    key = serialization.load_pem_private_key(pki.files.key.read_bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    pki.files.key.write_bytes(encrypted)
    tls = tls_config(pki.files).tls
    assert tls is not None

    with pytest.raises(ConfigError) as raised:
        ServerTLS(tls)

    assert str(raised.value) == (
        f"tls.key_file: {pki.files.key} is encrypted; give an unencrypted key"
    )


def test_describe_names_plaintext_tls_and_mutual_tls(pki: PKI) -> None:
    assert describe(loopback_config()) == "plaintext"
    assert describe(tls_config(pki.files)) == "TLS"
    assert describe(tls_config(pki.files, mutual=True)) == "mutual TLS"


def test_a_port_beyond_loopback_without_auth_is_warned_about(pki: PKI) -> None:
    exposed = {"host": "0.0.0.0", "port": 0}
    key = {"id": "ops", "sha256": "0" * 64, "tenant": "ops"}

    assert exposure_warning(loopback_config(server=exposed), 50051) == EXPOSED_WARNING.format(
        host="0.0.0.0", port=50051
    )
    assert exposure_warning(tls_config(pki.files, server=exposed), 7) == EXPOSED_WARNING.format(
        host="0.0.0.0", port=7
    )
    assert exposure_warning(tls_config(pki.files, mutual=True, server=exposed), 7) is None
    assert exposure_warning(loopback_config(server=exposed, auth={"api_keys": [key]}), 7) is None
    for host in ("127.0.0.1", "localhost", "::1", "[::1]"):
        assert exposure_warning(loopback_config(server={"host": host}), 7) is None


def test_the_exposure_warning_says_what_is_at_stake() -> None:
    assert EXPOSED_WARNING.format(host="0.0.0.0", port=50051) == (
        "serving 0.0.0.0:50051 without authentication: anyone who can reach this port "
        "can read and steer every generation (set auth, or tls.client_ca_file)"
    )
