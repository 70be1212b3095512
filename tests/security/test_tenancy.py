"""Authentication and tenancy through the API: who may call, and who sees what.

Four keys: two identities of tenant ``a`` (alice, alice2), one of tenant
``b`` (bob), one admin of tenant ``ops`` (root). Every RPC and every action
that takes a stream id is tried across tenants: each answers NOT_FOUND with
the very message an unknown id gets.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.backends.scripted import ScriptedBackend, words
from tests.helpers import Served, control_request, read_events, scripted_config, serving, start

pytestmark = pytest.mark.timeout(60)

KEYS = {"alice": "key-alice", "alice2": "key-alice-2", "bob": "key-bob", "root": "key-root"}
TENANTS = {"alice": "a", "alice2": "a", "bob": "b", "root": "ops"}
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_entry(name: str) -> dict[str, Any]:
    return {
        "id": name,
        "sha256": _sha(KEYS[name]),
        "tenant": TENANTS[name],
        "role": "admin" if name == "root" else "user",
    }


CONFIG = scripted_config("fake", auth={"api_keys": [key_entry(name) for name in KEYS]})
SLOW = " ".join(f"w{index}" for index in range(400))


def as_(name: str) -> tuple[tuple[str, str]]:
    """Call metadata carrying a key's bearer token."""
    return (("authorization", f"Bearer {KEYS[name]}"),)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with serving(CONFIG, {"fake": ScriptedBackend("fake", words(SLOW, delay=0.02))}) as s:
        yield s


async def started(served: Served, who: str, stream_id: str = "", tokens: int = 400) -> Any:
    """A running Generate call of ``who``; returns the call and its stream id."""
    request = start(stream_id=stream_id, sampling={"max_tokens": tokens})
    call = served.stub.Generate(iter([request]), metadata=as_(who))
    first = await read_events(call, limit=1)
    return call, first[0].stream_id


async def control(served: Served, who: str, *requests: svc_pb.ControlRequest) -> list[Any]:
    """Runs commands on one Control call; returns one reply per command."""
    call = served.stub.Control(iter(requests), metadata=as_(who))
    return [reply async for reply in call if reply.request_id]


def not_found_message(stream_id: str) -> str:
    return f"stream {stream_id!r} not found (unknown, or finished more than 300 s ago)"


async def test_calls_without_a_known_key_are_unauthenticated(served: Served) -> None:
    for metadata in [(), (("authorization", "Bearer nope"),), (("authorization", "Basic x"),)]:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.ListModels(svc_pb.ListModelsRequest(), metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await read_events(served.stub.Generate(iter([start()]), metadata=metadata))
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == "the authorization metadata must be 'Bearer <key>'"
    backend = served.backend("fake")
    assert backend.requests == []  # nothing reached a backend


async def test_health_and_reflection_need_no_key(served: Served) -> None:
    health = health_pb2_grpc.HealthStub(served.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(served.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    replies = [r async for r in reflection.ServerReflectionInfo(iter([request]))]
    names = {s.name for s in replies[0].list_services_response.service}
    assert "llmrouter.v1.RouterService" in names


async def test_another_tenants_stream_is_not_found_on_every_rpc(served: Served) -> None:
    call, stream_id = await started(served, "alice", "job-1")

    for missing in (stream_id, "never-was"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await served.stub.GetStream(
                svc_pb.GetStreamRequest(stream_id=missing), metadata=as_("bob")
            )
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert caught.value.details() == not_found_message(missing)

    listed = await served.stub.ListStreams(svc_pb.ListStreamsRequest(), metadata=as_("bob"))
    assert list(listed.streams) == []

    replies = await control(
        served,
        "bob",
        control_request("p", pause={"stream_id": stream_id}),
        control_request("r", resume={"stream_id": stream_id}),
        control_request("c", cancel={"stream_id": stream_id}),
        control_request("s", status={"stream_id": stream_id}),
        control_request("w", watch={"stream_ids": [stream_id]}),
        control_request("l", list={}),
    )
    assert [r.request_id for r in replies] == ["p", "r", "c", "s", "w", "l"]
    for reply in replies[:5]:
        assert reply.error.code == NOT_FOUND
        assert reply.error.message == not_found_message(stream_id)
    assert list(replies[5].list.streams) == []

    add = ops_pb.AddSubscription(
        stream_id=stream_id, slow_policy=ops_pb.SLOW_SUBSCRIBER_POLICY_SKIP
    )
    subscribe = served.stub.Subscribe(iter([svc_pb.SubscribeRequest(add=add)]), metadata=as_("bob"))
    ended = [item async for item in subscribe]
    assert [item.WhichOneof("item") for item in ended] == ["ended"]
    assert ended[0].ended.error.code == NOT_FOUND

    attach = svc_pb.GenerateRequest(attach=gen_pb.AttachGeneration(stream_id=stream_id))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await read_events(served.stub.Generate(iter([attach]), metadata=as_("bob")))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    # Alice's stream was neither paused nor cancelled: it still runs, unpaused.
    status = await served.stub.GetStream(
        svc_pb.GetStreamRequest(stream_id=stream_id), metadata=as_("alice")
    )
    assert status.status.state == ops_pb.STREAM_STATE_RUNNING
    assert status.status.tenant == "a"
    call.cancel()


async def test_a_client_chosen_id_is_scoped_to_its_tenant(served: Served) -> None:
    alice_call, _ = await started(served, "alice", "job-1")
    bob_call, bob_id = await started(served, "bob", "job-1")  # no ALREADY_EXISTS
    assert bob_id == "job-1"

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await read_events(
            served.stub.Generate(iter([start(stream_id="job-1")]), metadata=as_("alice2"))
        )
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS  # same tenant
    alice_call.cancel()
    bob_call.cancel()


async def test_server_made_stream_ids_carry_128_random_bits(served: Served) -> None:
    call, stream_id = await started(served, "alice", tokens=1)
    assert re.fullmatch(r"gen-[0-9a-f]{32}", stream_id)
    call.cancel()


async def test_an_admin_sees_and_steers_every_tenant(served: Served) -> None:
    alice_call, _ = await started(served, "alice", "job-1")
    bob_call, _ = await started(served, "bob", "job-1")

    listed = await served.stub.ListStreams(svc_pb.ListStreamsRequest(), metadata=as_("root"))
    assert sorted((s.tenant, s.stream_id) for s in listed.streams) == [
        ("a", "job-1"),
        ("b", "job-1"),
    ]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await served.stub.GetStream(
            svc_pb.GetStreamRequest(stream_id="job-1"), metadata=as_("root")
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == (
        "stream_id: stream 'job-1' exists in tenants a, b; name it as TENANT/ID"
    )

    replies = await control(
        served, "root", control_request("c", cancel={"stream_id": "a/job-1", "reason": "ops"})
    )
    assert replies[0].status.tenant == "a"
    assert replies[0].status.state == ops_pb.STREAM_STATE_CANCELLED
    events = await read_events(alice_call)
    assert events[-1].completed.cancelled_by == ev_pb.CANCELLED_BY_OPERATOR
    assert events[-1].completed.cancel_reason == "ops"

    bob = await served.stub.GetStream(
        svc_pb.GetStreamRequest(stream_id="job-1"), metadata=as_("bob")
    )
    assert bob.status.state == ops_pb.STREAM_STATE_RUNNING  # only alice's was cancelled
    bob_call.cancel()


async def test_a_watch_pushes_only_the_callers_tenant(served: Served) -> None:
    commands: asyncio.Queue[svc_pb.ControlRequest] = asyncio.Queue()

    async def requests() -> AsyncIterator[svc_pb.ControlRequest]:
        while True:
            yield await commands.get()

    watch = served.stub.Control(requests(), metadata=as_("bob"))
    await commands.put(control_request("w", watch={}))
    assert (await watch.read()).request_id == "w"

    alice_call, _ = await started(served, "alice", "alice-job", tokens=2)
    await read_events(alice_call)  # alice's stream went through every state
    bob_call, _ = await started(served, "bob", "bob-job", tokens=2)
    await read_events(bob_call)

    # Pushes are queued in the order the changes happen: alice's would come first.
    pushed = await watch.read()
    assert pushed.status.stream_id == "bob-job"
    assert pushed.status.tenant == "b"
    watch.cancel()


async def test_blocking_a_stream_is_for_its_owner_or_an_admin(served: Served) -> None:
    call, stream_id = await started(served, "alice", "job-1")

    async def subscribe(who: str, policy: int) -> Any:
        add = ops_pb.AddSubscription(stream_id=stream_id, slow_policy=policy)
        items = served.stub.Subscribe(iter([svc_pb.SubscribeRequest(add=add)]), metadata=as_(who))
        return await items.read()

    refused = await subscribe("alice2", ops_pb.SLOW_SUBSCRIBER_POLICY_BLOCK)
    assert refused.ended.error.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert refused.ended.error.message.startswith("AddSubscription.slow_policy: BLOCK holds")
    for who, policy in [
        ("alice2", ops_pb.SLOW_SUBSCRIBER_POLICY_SKIP),
        ("alice", ops_pb.SLOW_SUBSCRIBER_POLICY_BLOCK),
        ("root", ops_pb.SLOW_SUBSCRIBER_POLICY_BLOCK),
    ]:
        assert (await subscribe(who, policy)).WhichOneof("item") == "added"
    call.cancel()


async def test_the_key_file_is_reread_when_it_changes(tmp_path: Any) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text(f"- {{id: old, sha256: {_sha('old-key')}, tenant: t}}\n", encoding="utf-8")
    config = scripted_config("fake", auth={"api_keys_file": str(keys)})
    async with serving(config, {"fake": ScriptedBackend("fake", words("x"))}) as served:

        async def accepted(key: str) -> bool:
            try:
                await served.stub.ListModels(
                    svc_pb.ListModelsRequest(), metadata=(("authorization", f"Bearer {key}"),)
                )
            except grpc.aio.AioRpcError as error:
                return error.code() != grpc.StatusCode.UNAUTHENTICATED and _raise(error)
            return True

        assert await accepted("old-key")
        assert not await accepted("new-key")
        keys.write_text(f"- {{id: new, sha256: {_sha('new-key')}, tenant: t}}\n", encoding="utf-8")
        async with asyncio.timeout(10):
            while not await accepted("new-key"):  # noqa: ASYNC110 - polls the server's re-read
                await asyncio.sleep(0.1)
        assert not await accepted("old-key")


def _raise(error: Exception) -> bool:
    raise error
