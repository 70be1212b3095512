"""The Control RPC: operator commands on any generation, and watched state changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

from llmrouter.v1 import operations_pb2 as ops_pb
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.api import decode, encode
from llmrouter_server.auth.principal import Principal
from llmrouter_server.errors import InvalidArgument, RouterError
from llmrouter_server.streams.registry import Watcher
from llmrouter_server.streams.service import Generations
from llmrouter_server.streams.status import StreamStatus

Reply = svc_pb.ControlResponse

_END = Reply()
"""Put on the reply queue when the call's requests are done."""


async def control(
    generations: Generations,
    principal: Principal,
    requests: AsyncIterator[svc_pb.ControlRequest],
) -> AsyncIterator[Reply]:
    """Serves one Control call: a reply per command, then pushed state changes."""
    replies: asyncio.Queue[Reply] = asyncio.Queue(maxsize=64)
    watcher = generations.watch(principal)
    tasks = [
        asyncio.create_task(_commands(generations, requests, watcher, replies)),
        asyncio.create_task(_pushes(watcher, replies)),
    ]
    try:
        while (reply := await replies.get()) is not _END:
            yield reply
    finally:
        for task in tasks:
            task.cancel()
        watcher.close()


async def _commands(
    generations: Generations,
    requests: AsyncIterator[svc_pb.ControlRequest],
    watcher: Watcher,
    replies: asyncio.Queue[Reply],
) -> None:
    async for request in requests:
        try:
            reply = await _run(generations, request, watcher)
        except RouterError as error:
            reply = Reply(error=encode.command_error(error))
        reply.request_id = request.request_id
        await replies.put(reply)
    if watcher.stream_ids is not None and not watcher.stream_ids:
        await replies.put(_END)  # nothing watched: the call ends with the requests


async def _pushes(watcher: Watcher, replies: asyncio.Queue[Reply]) -> None:
    while True:
        status = await watcher.next()
        await replies.put(Reply(status=encode.stream_status(status)))


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
            return _list(generations.statuses(who, decode.states(request.list.states)))
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
