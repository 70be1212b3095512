"""The Control RPC: operator commands on any generation, and watched state changes.

Each command gets one reply with its request id; one that fails (undecodable,
no command, an unknown stream, a state that does not allow it, a limit) is
answered with ``error`` and the call goes on. Watched changes are pushed by a
second task. A bug in either task ends the call with INTERNAL (``tasks``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Iterable

from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.api import decode, encode
from llmrouter_server.api.decoding import Undecodable
from llmrouter_server.api.tasks import guarded
from llmrouter_server.auth.principal import Principal
from llmrouter_server.errors import InvalidArgument, ResourceExhausted, RouterError
from llmrouter_server.streams.registry import Watcher
from llmrouter_server.streams.service import Generations
from llmrouter_server.streams.status import StreamStatus

Reply = svc_pb.ControlResponse
Requests = AsyncIterator[svc_pb.ControlRequest | Undecodable]
"""A Control call's request stream, as the decoding interceptor hands it over."""

_END = Reply()
"""Put on the reply queue when the call's requests are done."""


async def control(
    generations: Generations,
    principal: Principal,
    requests: Requests,
) -> AsyncGenerator[Reply, None]:
    """Serves one Control call: a reply per command, then pushed state changes.

    Raises:
        Internal: A bug in one of the call's tasks (logged with its traceback).
    """
    replies: asyncio.Queue[Reply | RouterError] = asyncio.Queue(maxsize=64)
    watcher = generations.watch(principal)
    tasks = [
        guarded(
            _commands(generations, requests, watcher, replies),
            "Control command reader",
            replies.put,
        ),
        guarded(_pushes(watcher, replies), "Control watch pusher", replies.put),
    ]
    try:
        while (reply := await replies.get()) is not _END:
            if isinstance(reply, RouterError):
                raise reply
            yield reply
    finally:
        for task in tasks:
            task.cancel()
        watcher.close()


async def _commands(
    generations: Generations,
    requests: Requests,
    watcher: Watcher,
    replies: asyncio.Queue[Reply | RouterError],
) -> None:
    async for request in requests:
        await replies.put(await _answer(generations, request, watcher))
    if watcher.stream_ids is not None and not watcher.stream_ids:
        await replies.put(_END)  # nothing watched: the call ends with the requests


async def _pushes(watcher: Watcher, replies: asyncio.Queue[Reply | RouterError]) -> None:
    while True:
        status = await watcher.next()
        await replies.put(Reply(status=encode.stream_status(status)))


async def _answer(
    generations: Generations, request: svc_pb.ControlRequest | Undecodable, watcher: Watcher
) -> Reply:
    """The reply to one command: its result, or ``error`` when it failed."""
    if isinstance(request, Undecodable):  # its request id is unknown: the reply has none
        return Reply(error=encode.command_error(request.error()))
    try:
        reply = await _run(generations, request, watcher)
    except RouterError as error:
        reply = Reply(error=encode.command_error(error))
    reply.request_id = request.request_id
    return reply


async def _run(generations: Generations, request: svc_pb.ControlRequest, watcher: Watcher) -> Reply:
    who = watcher.principal
    match request.WhichOneof("command"):
        case "pause":
            status = generations.pause(who, request.pause.stream_id, request.pause.reason)
        case "resume":
            status = generations.resume(who, request.resume.stream_id)
        case "cancel":
            status = await generations.cancel(who, request.cancel.stream_id, request.cancel.reason)
        case "status":
            status = generations.status(who, request.status.stream_id)
        case "list":
            states = decode.states(request.list.states, "ListStreamsCommand.states")
            return _list(generations.statuses(who, states))
        case "watch":
            return _list(_watch(generations, request.watch.stream_ids, watcher))
        case "unwatch":
            _unwatch(request.unwatch.stream_ids, watcher)
            return _list([])
        case _:
            raise InvalidArgument("ControlRequest.command", "no command set")
    return Reply(status=encode.stream_status(status))


def _watch(
    generations: Generations, stream_ids: Iterable[str], watcher: Watcher
) -> list[StreamStatus]:
    """Starts watching; returns the current status of what is now watched."""
    if not stream_ids:
        watcher.stream_ids = None
        return generations.statuses(watcher.principal)
    limit = generations.limits.max_watches_per_call
    if watcher.stream_ids is not None and len(watcher.stream_ids.union(stream_ids)) > limit:
        raise ResourceExhausted(
            f"limits.max_watches_per_call: a Control call may watch at most {limit} stream ids "
            f"by id (it watches {len(watcher.stream_ids)}); unwatch some, or watch all"
        )
    # NOT_FOUND before anything is watched
    statuses = [generations.status(watcher.principal, stream_id) for stream_id in stream_ids]
    if watcher.stream_ids is not None:
        watcher.stream_ids.update(stream_ids)
    return statuses


def _unwatch(stream_ids: Iterable[str], watcher: Watcher) -> None:
    if not stream_ids or watcher.stream_ids is None:
        watcher.stream_ids = set()
    else:
        watcher.stream_ids.difference_update(stream_ids)


def _list(statuses: list[StreamStatus]) -> Reply:
    return Reply(list=ops_pb.StreamList(streams=[encode.stream_status(s) for s in statuses]))
