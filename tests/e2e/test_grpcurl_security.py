"""grpcurl against a server with mutual TLS and API keys, as an operator would run it."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from llmrouter_server.config import Config
from tests.e2e.grpcurl import GRPCURL
from tests.helpers import serving
from tests.security.helpers import make_pki, tls_config
from tests.security.scripted import ANSWER, backends

pytestmark = pytest.mark.timeout(60)

KEY = "grpcurl-key"


async def run(*args: str) -> tuple[int, str, str]:
    """Runs grpcurl (no ``-plaintext``); returns its exit status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        GRPCURL, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    return process.returncode or 0, stdout.decode(), stderr.decode()


def config(folder: Path) -> tuple[Config, list[str]]:
    """Mutual TLS with API keys; returns the config and grpcurl's TLS flags."""
    pki = make_pki(folder)
    cert, key = pki.client_ca.client("operator").write(folder, "operator")
    ca = folder / "server-ca.crt"
    ca.write_bytes(pki.server_ca.cert)
    entry = {"id": "ops", "sha256": hashlib.sha256(KEY.encode()).hexdigest(), "tenant": "t"}
    tls = ["-cacert", str(ca), "-cert", str(cert), "-key", str(key)]
    return tls_config(pki.files, mutual=True, auth={"api_keys": [entry]}), tls


async def test_grpcurl_with_a_client_certificate_and_a_bearer_key(tmp_path: Path) -> None:
    settings, tls = config(tmp_path)
    async with serving(settings, backends()) as served:
        address = served.address
        request = json.dumps({"start": {"prompt": "hi", "model": "fake-model"}})
        method = "llmrouter.v1.RouterService/Generate"
        code, listed, _ = await run(*tls, address, "list")
        keyed = await run(
            *tls, "-H", f"authorization: Bearer {KEY}", "-d", request, address, method
        )
        keyless = await run(*tls, "-d", request, address, method)
        plaintext = await run("-plaintext", "-connect-timeout", "1", address, "list")

    assert code == 0  # reflection needs no key
    assert "llmrouter.v1.RouterService" in listed.split()
    assert keyed[0] == 0, keyed[2]
    events = [json.loads(chunk) for chunk in keyed[1].replace("}\n{", "}\x00{").split("\x00")]
    chunks = [e["event"]["chunk"]["text"] for e in events if "chunk" in e["event"]]
    assert "".join(chunks) == ANSWER
    assert keyless[0] != 0
    assert "Code: Unauthenticated" in keyless[2]
    assert plaintext[0] != 0
