"""The blocking Python client (``grpc.insecure_channel``) against the server.

pytest-grpc's channel and stub fixtures (``grpc_channel``, ``grpc_stub``) are
used as they are. Its server fixtures are replaced: they build a synchronous
``grpc.server`` on a thread pool, which cannot run grpc.aio coroutine
handlers, and they choose the port by binding and closing a socket instead of
binding port 0. Here the real grpc.aio server runs in its own thread and
event loop, so blocking calls from the test thread cannot stall it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import grpc
import pytest
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from llmrouter_server.app import start_server
from tests.helpers import loopback_config, start

pytestmark = pytest.mark.timeout(60)


class _ServerThread(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="llmrouter-server", daemon=True)
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._stopping = asyncio.Event()

    def run(self) -> None:
        self.loop.run_until_complete(self._serve())
        self.loop.close()

    async def _serve(self) -> None:
        server = await start_server(loopback_config())
        self.port = server.port
        self._ready.set()
        await self._stopping.wait()
        await server.stop(0)

    def wait_ready(self) -> None:
        assert self._ready.wait(30), "server did not start"

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stopping.set)
        self.join(30)


@pytest.fixture(scope="module")
def grpc_server() -> Iterator[_ServerThread]:
    thread = _ServerThread()
    thread.start()
    thread.wait_ready()
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def grpc_addr(grpc_server: _ServerThread) -> str:
    return f"127.0.0.1:{grpc_server.port}"


@pytest.fixture(scope="module")
def grpc_stub_cls() -> type[svc_grpc.RouterServiceStub]:
    return svc_grpc.RouterServiceStub


def test_blocking_generate_streams_text(grpc_stub: svc_grpc.RouterServiceStub) -> None:
    responses = list(
        grpc_stub.Generate(iter([start(sampling={"temperature": 0, "max_tokens": 6})]))
    )

    events = [response.event for response in responses]
    assert events[0].HasField("started")
    assert events[-1].completed.finish_reason == ev_pb.FINISH_REASON_LENGTH
    assert events[-1].completed.usage.completion_tokens == 6
    assert "".join(e.chunk.text for e in events if e.HasField("chunk")).strip()


def test_blocking_list_models(grpc_stub: svc_grpc.RouterServiceStub) -> None:
    reply = grpc_stub.ListModels(svc_pb.ListModelsRequest())

    assert [route.name for route in reply.routes] == ["smollm2-135m-instruct"]


def test_blocking_unknown_model_raises_not_found(grpc_stub: svc_grpc.RouterServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        list(grpc_stub.Generate(iter([start(model="nope")])))

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
