"""The client commands' API key and TLS options, against an in-process recording server.

The server is the client tests' (``tests/clients/recording.py``): it records
the ``authorization`` metadata and the TLS peer of each call, or refuses calls
with a status as the server's auth interceptor does. The certificates come
from ``tests/certs.py``.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import grpc
import pytest

from tests.certs import Authority, Issued
from tests.cli.process import run_cli
from tests.clients.recording import RecordingRouter, serving

pytestmark = pytest.mark.timeout(60)

KEY = "k-51c2"
"""The API key the tests give."""

UNSET = dict.fromkeys(
    (
        "LLMROUTER_API_KEY",
        "LLMROUTER_TLS_CA",
        "LLMROUTER_TLS_CERT",
        "LLMROUTER_TLS_KEY",
        "LLMROUTER_TLS_SERVER_NAME",
    ),
    "",
)
"""The credential variables, empty (which counts as unset) unless a test sets them."""


async def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Runs ``llmrouter ARGS`` with only the credential variables in ``env``."""
    return await asyncio.to_thread(run_cli, *args, env={**UNSET, **env})


@pytest.fixture(scope="module")
def authority() -> Authority:
    """The authority the server's and the client's certificates come from."""
    return Authority("llmrouter test CA")


@pytest.fixture(scope="module")
def server_cert(authority: Authority) -> Issued:
    """A certificate for 127.0.0.1, and its key."""
    return authority.server("llmrouter server", dns=[])


@pytest.fixture
def router() -> RecordingRouter:
    """A recording servicer that answers every call."""
    return RecordingRouter()


@pytest.fixture
def pem(tmp_path: Path, authority: Authority) -> dict[str, str]:
    """Paths of ``ca``, ``cert`` and ``key``: the authority and a client certificate."""
    client = authority.client("client-7")
    paths = {}
    for name, data in [("ca", authority.cert), ("cert", client.cert), ("key", client.key)]:
        path = tmp_path / f"{name}.pem"
        path.write_bytes(data)
        paths[name] = str(path)
    return paths


async def test_the_key_from_the_environment_goes_with_models_and_generate(
    router: RecordingRouter,
) -> None:
    async with serving(router) as address:
        models = await cli("models", "--address", address, LLMROUTER_API_KEY=KEY)
        generate = await cli("generate", "hi", "--address", address, LLMROUTER_API_KEY=KEY)

    assert (models.returncode, models.stdout, models.stderr) == (0, "fake (default)\n", "")
    assert (generate.returncode, generate.stdout) == (0, "hi\n")
    assert router.keys == [("ListModels", [f"Bearer {KEY}"]), ("Generate", [f"Bearer {KEY}"])]


async def test_the_key_file_wins_over_the_environment(
    router: RecordingRouter, tmp_path: Path
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("k-from-file\n")

    async with serving(router) as address:
        result = await cli(
            "models", "--address", address, "--api-key-file", str(key_file), LLMROUTER_API_KEY=KEY
        )

    assert result.returncode == 0
    assert router.keys == [("ListModels", ["Bearer k-from-file"])]


async def test_without_a_key_none_is_sent(router: RecordingRouter) -> None:
    async with serving(router) as address:
        result = await cli("models", "--address", address)

    assert result.returncode == 0
    assert router.keys == [("ListModels", [])]


async def test_unauthenticated_without_a_key_says_how_to_give_one(router: RecordingRouter) -> None:
    router.refusal = (grpc.StatusCode.UNAUTHENTICATED, "the call carries no credentials")

    async with serving(router) as address:
        result = await cli("models", "--address", address)

    assert result.returncode == 1
    assert result.stderr == (
        "llmrouter: the server refused the credentials "
        "(UNAUTHENTICATED: the call carries no credentials); "
        "set LLMROUTER_API_KEY or --api-key-file\n"
    )


async def test_a_refused_key_is_named_by_its_source_never_shown(router: RecordingRouter) -> None:
    router.refusal = (grpc.StatusCode.UNAUTHENTICATED, "unknown API key")

    async with serving(router) as address:
        result = await cli("generate", "hi", "--address", address, LLMROUTER_API_KEY=KEY)

    assert result.returncode == 1
    assert result.stderr == (
        "llmrouter: the server refused the key from LLMROUTER_API_KEY "
        "(UNAUTHENTICATED: unknown API key); check it, or set LLMROUTER_API_KEY or --api-key-file\n"
    )


async def test_permission_denied_names_the_role(router: RecordingRouter) -> None:
    router.refusal = (grpc.StatusCode.PERMISSION_DENIED, "the role user may not list models")

    async with serving(router) as address:
        result = await cli("models", "--address", address, LLMROUTER_API_KEY=KEY)

    assert result.returncode == 1
    assert result.stderr == (
        "llmrouter: the server does not allow this call with these credentials "
        "(PERMISSION_DENIED: the role user may not list models); "
        "use a key or client certificate whose role allows it\n"
    )


async def test_tls_with_the_ca_from_the_option_or_the_environment(
    router: RecordingRouter, server_cert: Issued, pem: dict[str, str]
) -> None:
    async with serving(router, cert=server_cert) as address:
        by_option = await cli("models", "--address", address, "--tls-ca", pem["ca"])
        by_env = await cli("models", "--address", address, LLMROUTER_TLS_CA=pem["ca"])

    assert (by_option.returncode, by_option.stderr) == (0, "")
    assert (by_env.returncode, by_env.stderr) == (0, "")
    assert router.peers == [("ssl", []), ("ssl", [])]


async def test_mutual_tls_presents_the_client_certificate(
    router: RecordingRouter,
    server_cert: Issued,
    authority: Authority,
    pem: dict[str, str],
) -> None:
    async with serving(router, cert=server_cert, client_ca=authority.cert) as address:
        result = await cli(
            *("models", "--address", address, "--tls-ca", pem["ca"], "--tls-cert", pem["cert"]),
            LLMROUTER_TLS_KEY=pem["key"],
        )

    assert (result.returncode, result.stderr) == (0, "")
    assert router.peers == [("ssl", ["client-7"])]


async def test_mutual_tls_without_a_certificate_says_to_give_one(
    router: RecordingRouter,
    server_cert: Issued,
    authority: Authority,
    pem: dict[str, str],
) -> None:
    async with serving(router, cert=server_cert, client_ca=authority.cert) as address:
        result = await cli("models", "--address", address, "--tls-ca", pem["ca"])

    assert result.returncode == 1
    assert result.stderr == (
        f"llmrouter: {address} closed the TLS connection (socket closed); "
        "if it asks for a client certificate, give --tls-cert and --tls-key\n"
    )


async def test_an_untrusted_certificate_says_to_give_the_ca(
    router: RecordingRouter, server_cert: Issued
) -> None:
    async with serving(router, cert=server_cert) as address:
        result = await cli("models", "--address", address, "--tls")

    assert result.returncode == 1
    assert result.stderr == (
        f"llmrouter: the certificate of {address} is not trusted "
        "(unable to get local issuer certificate); "
        "give the CA that signed it with --tls-ca or LLMROUTER_TLS_CA\n"
    )


async def test_a_certificate_for_another_name_says_to_give_the_name(
    router: RecordingRouter, authority: Authority, pem: dict[str, str]
) -> None:
    cert = authority.server("llmrouter server", dns=["router.internal"], ips=[])

    async with serving(router, cert=cert) as address:
        unnamed = await cli("models", "--address", address, "--tls-ca", pem["ca"])
        named = await cli(
            "models",
            *("--address", address, "--tls-ca", pem["ca"]),
            LLMROUTER_TLS_SERVER_NAME="router.internal",
        )

    assert unnamed.stderr == (
        f"llmrouter: the certificate of {address} does not name that host; "
        "give the name it carries with --tls-server-name or LLMROUTER_TLS_SERVER_NAME\n"
    )
    assert (named.returncode, named.stderr) == (0, "")


async def test_tls_against_a_plaintext_server_says_so(
    router: RecordingRouter, pem: dict[str, str]
) -> None:
    async with serving(router) as address:
        result = await cli("models", "--address", address, "--tls-ca", pem["ca"])

    assert result.returncode == 1
    assert result.stderr == (
        f"llmrouter: {address} does not speak TLS (wrong version number); "
        "for a plaintext server leave out --tls and the --tls-* settings\n"
    )


async def test_plaintext_against_a_tls_server_suggests_tls(
    router: RecordingRouter, server_cert: Issued
) -> None:
    async with serving(router, cert=server_cert) as address:
        result = await cli("models", "--address", address)

    assert result.returncode == 1
    assert result.stderr == (
        f"llmrouter: {address} closed the connection (socket closed); "
        "if it serves TLS, give --tls, or --tls-ca with the CA that signed its certificate\n"
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--tls-cert", "{cert}"],
            {},
            "--tls-cert needs --tls-key or $LLMROUTER_TLS_KEY: "
            "a client certificate and its private key go together",
        ),
        (
            [],
            {"LLMROUTER_TLS_KEY": "{key}"},
            "LLMROUTER_TLS_KEY needs --tls-cert or $LLMROUTER_TLS_CERT: "
            "a client certificate and its private key go together",
        ),
        (
            ["--tls-ca", "{missing}"],
            {},
            "--tls-ca {missing}: cannot read it (no such file or directory)",
        ),
        (
            [],
            {"LLMROUTER_TLS_CA": "{not_pem}"},
            "LLMROUTER_TLS_CA {not_pem}: not a PEM file (no '-----BEGIN' line)",
        ),
        (
            ["--api-key-file", "{missing}"],
            {},
            "--api-key-file {missing}: cannot read it (no such file or directory)",
        ),
        (["--api-key-file", "{empty}"], {}, "--api-key-file {empty}: the API key is empty"),
        (
            [],
            {"LLMROUTER_API_KEY": "two words"},
            "LLMROUTER_API_KEY: an API key is printable ASCII without spaces",
        ),
    ],
    ids=[
        "cert-without-key",
        "key-without-cert",
        "missing-ca",
        "ca-not-pem",
        "missing-key-file",
        "empty-key-file",
        "key-with-a-space",
    ],
)
async def test_a_bad_credential_setting_is_a_usage_error(
    args: list[str], env: dict[str, str], message: str, pem: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "not.pem").write_text("plain text\n")
    paths = {
        **pem,
        "missing": str(tmp_path / "missing.pem"),
        "empty": str(tmp_path / "empty"),
        "not_pem": str(tmp_path / "not.pem"),
    }

    result = await cli(
        "models",
        *(arg.format(**paths) for arg in args),
        **{name: value.format(**paths) for name, value in env.items()},
    )

    assert result.returncode == 2
    assert result.stderr == f"llmrouter: {message.format(**paths)}\n"
    assert "words" not in result.stderr
