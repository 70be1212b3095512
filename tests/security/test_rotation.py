"""Certificate rotation: new files serve new connections, running streams go on.

The server reads the ``tls`` files again before a new handshake when they
changed, or after ``reload()`` (SIGHUP); a broken file keeps the certificate
it had. Connections already open keep theirs, and their streams complete.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmrouter_server.app import serve
from llmrouter_server.config import TLSConfig
from llmrouter_server.transport import ServerTLS
from tests.certs import Authority
from tests.helpers import eventually, kinds, read_events, serving, text
from tests.security.helpers import (
    PKI,
    answer,
    generate_call,
    refused,
    tls_channel,
    tls_config,
)
from tests.security.scripted import ANSWER, HELD_ANSWER, HeldBackend, backends

pytestmark = pytest.mark.timeout(20)

_TRANSPORT = "llmrouter_server.transport"


async def test_new_files_serve_new_connections_while_a_running_stream_completes(
    pki: PKI,
) -> None:
    held = HeldBackend()
    async with serving(tls_config(pki.files), backends(held)) as served:
        port = served.server.port
        async with tls_channel(port, pki.server_ca.cert) as old:
            call = generate_call(old, "held-model")
            first = await read_events(call, limit=2)
            assert kinds(first) == ["started", "chunk"]

            new_ca = Authority("new server CA")
            new_ca.server().write(pki.files.cert.parent, "server")

            async with tls_channel(port, new_ca.cert) as fresh:
                assert await answer(fresh) == ANSWER
            async with tls_channel(port, pki.server_ca.cert) as stale:
                assert await refused(stale) == grpc.StatusCode.UNAVAILABLE
            held.release.set()
            rest = await read_events(call)

    assert kinds(rest)[-1] == "completed"
    assert text(first + rest) == HELD_ANSWER


def test_reload_hands_grpc_the_files_once_even_when_they_look_unchanged(pki: PKI) -> None:
    tls = ServerTLS(TLSConfig(cert_file=pki.files.cert, key_file=pki.files.key))

    assert tls.fetch() is None
    tls.reload()
    assert isinstance(tls.fetch(), grpc.ServerCertificateConfiguration)
    assert tls.fetch() is None


async def test_a_broken_file_at_rotation_keeps_the_certificate_and_warns_once(
    pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=_TRANSPORT)
    async with serving(tls_config(pki.files), backends()) as served:
        pki.files.cert.write_bytes(b"not PEM\n")
        for _ in range(2):
            async with tls_channel(served.server.port, pki.server_ca.cert) as channel:
                assert await answer(channel) == ANSWER

        new_ca = Authority("new server CA")
        new_ca.server().write(pki.files.cert.parent, "server")
        async with tls_channel(served.server.port, new_ca.cert) as channel:
            assert await answer(channel) == ANSWER

    assert _logged(caplog) == [
        (
            logging.WARNING,
            f"tls.cert_file: {pki.files.cert} holds no PEM certificate; "
            "keeping the current certificate",
        ),
        (logging.INFO, f"tls: loaded the certificate in {pki.files.cert} for new connections"),
    ]


async def test_sighup_makes_a_running_serve_reload_and_the_handlers_go_with_it(
    pki: PKI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llmrouter_server")
    listener = {"host": "127.0.0.1", "port": 0, "grace_period_seconds": 0}
    config = tls_config(pki.files, server=listener)
    task = asyncio.create_task(serve(config))
    try:
        port = await _listening_port(caplog)
        signal.raise_signal(signal.SIGHUP)
        await eventually(lambda: _TRANSPORT in {record.name for record in caplog.records})
        async with tls_channel(port, pki.server_ca.cert) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        signal.raise_signal(signal.SIGTERM)
        await asyncio.wait_for(task, 10)
    finally:
        task.cancel()

    assert _logged(caplog, _TRANSPORT) == [
        (logging.INFO, "tls: the certificate files will be re-read at the next connection"),
        (logging.INFO, f"tls: loaded the certificate in {pki.files.cert} for new connections"),
    ]
    assert not asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)


async def _listening_port(caplog: pytest.LogCaptureFixture) -> int:
    def listening() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage().startswith("llmrouter listening")]

    await eventually(lambda: bool(listening()))
    record = listening()[0]
    assert isinstance(record.args, tuple)
    port = record.args[1]
    assert isinstance(port, int)
    assert record.getMessage().startswith(f"llmrouter listening on 127.0.0.1:{port}, TLS (")
    return port


def _logged(caplog: pytest.LogCaptureFixture, name: str = _TRANSPORT) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == name]
