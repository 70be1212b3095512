"""What the TLS tests share: certificates on disk, a TLS configuration of the
scripted routes (``scripted.py``) and secure channels to the server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from llmrouter_server.config import Config
from tests.certs import Authority, Issued
from tests.helpers import start, text
from tests.security.scripted import config

CALL_SECONDS = 5.0
"""Deadline of every call; a refused handshake fails well before it."""

_OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]
"""Channel options that keep a channel from sharing another channel's connection."""


@dataclass
class Files:
    """The ``tls`` files: the server's certificate and key, and the client CA."""

    cert: Path
    key: Path
    client_ca: Path


@dataclass(frozen=True)
class PKI:
    """The authorities of one test and the files the server starts with."""

    server_ca: Authority
    """Signed the server certificate in ``files``."""
    client_ca: Authority
    """In ``files.client_ca``: signs the client certificates mutual TLS accepts."""
    stranger: Authority
    """Trusted by nobody."""
    files: Files


def make_pki(folder: Path) -> PKI:
    """Authorities, and a server certificate, its key and the client CA in ``folder``."""
    server_ca, client_ca = Authority("server CA"), Authority("client CA")
    cert, key = server_ca.server().write(folder, "server")
    files = Files(cert, key, client_ca.write(folder, "clients"))
    return PKI(server_ca, client_ca, Authority("stranger CA"), files)


def tls_config(files: Files, *, mutual: bool = False, **overrides: Any) -> Config:
    """The scripted routes' configuration (``scripted.config``) with TLS, mutual when asked."""
    tls: dict[str, Any] = {"cert_file": files.cert, "key_file": files.key}
    if mutual:
        tls["client_ca_file"] = files.client_ca
    return config(tls=tls, **overrides)


@asynccontextmanager
async def tls_channel(
    port: int, root: bytes, client: Issued | None = None
) -> AsyncIterator[grpc.aio.Channel]:
    """A TLS channel to ``127.0.0.1:port`` trusting only ``root``, on its own connection.

    Args:
        port: The server's port.
        root: The CA certificate the server's certificate must chain to.
        client: The client certificate and key to present, if any.
    """
    credentials = grpc.ssl_channel_credentials(
        root_certificates=root,
        private_key=client.key if client else None,
        certificate_chain=client.cert if client else None,
    )
    target = f"127.0.0.1:{port}"
    async with grpc.aio.secure_channel(target, credentials, options=_OWN_CONNECTION) as channel:
        yield channel


@asynccontextmanager
async def plaintext_channel(port: int) -> AsyncIterator[grpc.aio.Channel]:
    """A plaintext channel to ``127.0.0.1:port``, on its own connection."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=_OWN_CONNECTION) as channel:
        yield channel


def generate_call(channel: grpc.aio.Channel, model: str = "fake-model") -> Any:
    """Starts a Generate call on ``model``; returns the call."""
    stub = svc_grpc.RouterServiceStub(channel)
    return stub.Generate(iter([start(model=model)]), timeout=CALL_SECONDS)


async def answer(channel: grpc.aio.Channel) -> str:
    """The text of one Generate call on ``fake-model``."""
    return text([response.event async for response in generate_call(channel)])


async def refused(channel: grpc.aio.Channel) -> grpc.StatusCode:
    """The status code of a Generate call that must fail."""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await answer(channel)
    return raised.value.code()
