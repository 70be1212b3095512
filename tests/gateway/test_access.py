"""Who may open a socket: origins, API keys (subprotocol, header, first frame), the
connection limit, tenancy through the gateway, and the chat page beside it."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from llmrouter.v1 import service_pb2 as svc_pb
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.gateway.helpers import (
    as_json,
    gateway_config,
    grpc_status,
    http_url,
    read_json,
    socket,
    ws_url,
)
from tests.helpers import Served, control_request, serving, start
from tests.security.scripted import HeldBackend, backends

KEYS = {"alice": "key-alice", "bob": "key-bob"}
AUTH = {
    "api_keys": [
        {"id": name, "sha256": hashlib.sha256(key.encode()).hexdigest(), "tenant": name[0]}
        for name, key in KEYS.items()
    ]
}


def bearer_protocol(key: str) -> str:
    encoded = base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")
    return f"llmrouter.bearer.{encoded}"


def as_(name: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {KEYS[name]}"),)


async def refused(served: Served, **options: Any) -> Any:
    """The HTTP response of an upgrade the gateway refuses."""
    with pytest.raises(InvalidStatus) as caught:
        async with socket(served, **options):
            pass
    return caught.value.response


@pytest.fixture
async def guarded(held: HeldBackend) -> AsyncIterator[Served]:
    """Alice (tenant ``a``) and Bob (tenant ``b``) have keys; nobody else gets in."""
    async with serving(gateway_config(sections={"auth": AUTH}), backends(held)) as served:
        yield served


async def test_an_origin_not_allowed_is_refused_with_403(served: Served) -> None:
    response = await refused(served, origin="http://evil.example")

    assert response.status_code == 403
    assert response.body == b"origin http://evil.example is not in gateway.allowed_origins\n"


@pytest.mark.parametrize(
    ("allowed", "origin"),
    [
        ([], None),
        ([], "same"),
        (["https://app.example"], "https://app.example"),
        (["*"], "http://anywhere.example:8443"),
    ],
)
async def test_allowed_origins_open_a_socket(allowed: list[str], origin: str | None) -> None:
    config = gateway_config(allowed_origins=allowed)
    async with serving(config, backends()) as served:
        if origin == "same":
            origin = f"http://127.0.0.1:{served.server.gateway_port}"
        async with socket(served, origin=origin) as client:
            models = await client.unary("ListModels", {})

    assert client.ws.subprotocol == "llmrouter.v1"
    assert len(models["routes"]) == 2


@pytest.mark.parametrize(
    "credentials",
    [
        {"additional_headers": {"Authorization": "Bearer nope"}},
        {"subprotocols": ["llmrouter.v1", bearer_protocol("nope")]},
        {"subprotocols": ["llmrouter.v1", "llmrouter.bearer.%%%"]},
    ],
    ids=["header", "subprotocol", "not base64url"],
)
async def test_a_bad_key_at_the_upgrade_is_refused_with_401(
    guarded: Served, credentials: dict[str, Any]
) -> None:
    response = await refused(guarded, **credentials)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "credentials",
    [
        {"subprotocols": ["llmrouter.v1", bearer_protocol(KEYS["alice"])]},
        {"additional_headers": {"Authorization": f"Bearer {KEYS['alice']}"}},
        {"first_frame": {"auth": f"Bearer {KEYS['alice']}"}},
    ],
    ids=["subprotocol", "header", "first frame"],
)
async def test_a_good_key_opens_a_socket_of_its_tenant(
    guarded: Served, credentials: dict[str, Any]
) -> None:
    first_frame = credentials.pop("first_frame", None)
    async with socket(guarded, **credentials) as client:
        if first_frame is not None:
            await client.send(first_frame)
        await client.call("g", "Generate", start(stream_id="job"))
        listed = await client.unary("ListStreams", {})

    assert client.ws.response is not None
    assert client.ws.response.headers["Sec-WebSocket-Protocol"] == "llmrouter.v1"
    assert [(s["streamId"], s["tenant"]) for s in listed["streams"]] == [("job", "a")]


@pytest.mark.parametrize(
    ("first_frame", "reason"),
    [
        ({"auth": "Bearer nope"}, "the API key is not valid for this server"),
        (
            {"id": "g", "method": "ListModels", "message": {}},
            'the first frame must be {"auth": "Bearer <key>"}',
        ),
    ],
    ids=["bad key", "not an auth frame"],
)
async def test_a_bad_first_frame_closes_the_socket_with_4401(
    guarded: Served, first_frame: dict[str, Any], reason: str
) -> None:
    async with socket(guarded) as client:
        await client.send(first_frame)
        await client.ws.wait_closed()

    assert (client.ws.close_code, client.ws.close_reason) == (4401, reason)


async def test_a_socket_without_credentials_in_time_is_closed_with_4401(
    held: HeldBackend,
) -> None:
    config = gateway_config(heartbeat_seconds=0.3, sections={"auth": AUTH})
    async with serving(config, backends(held)) as served, socket(served) as client:
        await client.ws.wait_closed()

    assert (client.ws.close_code, client.ws.close_reason) == (4401, "no credentials in time")


async def test_sockets_over_max_connections_are_refused_with_503(held: HeldBackend) -> None:
    config = gateway_config(max_connections=2)
    async with serving(config, backends(held)) as served, socket(served), socket(served) as second:
        response = await refused(served)
        await second.round_trip()

    assert response.status_code == 503
    assert response.body == b"2 sockets are open (gateway.max_connections)\n"


async def test_another_tenants_generation_is_not_found_as_over_grpc(guarded: Served) -> None:
    alice = {"additional_headers": {"Authorization": f"Bearer {KEYS['alice']}"}}
    bob = {"additional_headers": {"Authorization": f"Bearer {KEYS['bob']}"}}
    async with socket(guarded, **alice) as owner, socket(guarded, **bob) as other:
        await owner.open("g", "Generate", start(model="held-model", stream_id="job"))
        await owner.message("g")
        ws_get = await other.call("get", "GetStream", {"streamId": "job"})
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await guarded.stub.GetStream(
                svc_pb.GetStreamRequest(stream_id="job"), metadata=as_("bob")
            )
        commands = [
            control_request("p", pause={"stream_id": "job"}),
            control_request("c", cancel={"stream_id": "job"}),
        ]
        await other.open("ctl", "Control", as_json(commands[0]))
        await other.send({"id": "ctl", "message": as_json(commands[1]), "end": True})
        ws_control = await other.rest("ctl")
        grpc_control = await read_json(guarded.stub.Control(iter(commands), metadata=as_("bob")))
        add = svc_pb.SubscribeRequest(add={"stream_id": "job"})
        ws_subscribe = await other.call("sub", "Subscribe", add)
        grpc_subscribe = await read_json(guarded.stub.Subscribe(iter([add]), metadata=as_("bob")))
        _, attach = await other.call("a", "Generate", {"attach": {"streamId": "job"}})
        listed = await other.unary("ListStreams", {})
        still = await owner.unary("GetStream", {"streamId": "job"})

    assert ws_get == ([], grpc_status(caught.value))
    assert ws_get[1]["code"] == 5  # NOT_FOUND
    assert ws_control == (grpc_control, {"code": 0})
    assert [reply["error"]["code"] for reply in grpc_control] == [5, 5]
    assert ws_subscribe == (grpc_subscribe, {"code": 0})
    assert grpc_subscribe[0]["ended"]["error"]["code"] == 5
    assert attach["code"] == 5
    assert listed == {}
    assert (still["status"]["state"], still["status"]["tenant"]) == ("STREAM_STATE_RUNNING", "a")


async def test_the_page_is_served_from_page_dir(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>chat</title>\n")
    (tmp_path / "assets" / "app.js").write_text("console.log('hi')\n")
    async with (
        serving(gateway_config(page_dir=tmp_path), backends()) as served,
        httpx.AsyncClient() as http,
    ):
        page = await http.get(http_url(served))
        script = await http.get(http_url(served, "/assets/app.js"))

    assert (page.status_code, page.text) == (200, "<!doctype html><title>chat</title>\n")
    assert page.headers["Content-Type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert (script.status_code, script.text) == (200, "console.log('hi')\n")


async def test_without_a_built_page_the_root_is_404_with_a_text(tmp_path: Path) -> None:
    async with (
        serving(gateway_config(page_dir=tmp_path), backends()) as served,
        httpx.AsyncClient() as http,
    ):
        page = await http.get(http_url(served))
        async with connect(ws_url(served), proxy=None, subprotocols=["llmrouter.v1"]) as ws:
            still_serves = ws.subprotocol

    assert page.status_code == 404
    assert page.text == "The chat page is not built: run `make web`, or set gateway.page_dir.\n"
    assert still_serves == "llmrouter.v1"
