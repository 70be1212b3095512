"""A server that records the credentials each call carried, for the client and CLI tests.

``RecordingRouter`` stands in for the router: it records the ``authorization``
metadata and the TLS peer of every call and can refuse calls with a status, as
the server's auth interceptor does. ``serving`` runs it in-process on a
loopback port, in plaintext, TLS or mutual TLS. The client tests
(``tests/clients/test_credentials.py``) and the CLI tests
(``tests/cli/test_credentials.py``) use both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from tests.certs import Issued


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
    cert: Issued | None = None,
    client_ca: bytes | None = None,
) -> AsyncIterator[str]:
    """Serves ``servicer`` on a loopback port; yields ``127.0.0.1:PORT``.

    Args:
        servicer: The service.
        cert: The server's certificate and key for TLS; None serves plaintext.
        client_ca: With ``cert``, the root client certificates must chain to:
            every client must present one (mutual TLS).
    """
    server = grpc.aio.server()
    svc_grpc.add_RouterServiceServicer_to_server(servicer, server)
    if cert is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        credentials = grpc.ssl_server_credentials(
            [(cert.key, cert.cert)],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)
