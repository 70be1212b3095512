"""The Generate RPC: start or attach, stream events, apply steering requests.

The first request starts (or attaches to) the generation; one that fails
ends the call with its status. Later requests steer it from a task of their
own: one that cannot be applied (undecodable, no action, an action the
generation's state does not allow) is answered in-band with a ``rejected``
response, nothing changes, and the reader goes on, so a cancel after it
still cancels. The responses are the events, as the caller's cursor gives
them, with the rejections merged in as they come.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import grpc
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.api import decode, encode
from llmrouter_server.api.decoding import Undecodable, decoded
from llmrouter_server.api.tasks import guarded
from llmrouter_server.auth.principal import Principal
from llmrouter_server.errors import (
    FailedPrecondition,
    InvalidArgument,
    RouterError,
)
from llmrouter_server.streams.events import Event
from llmrouter_server.streams.generation import Generation
from llmrouter_server.streams.log import Cursor
from llmrouter_server.streams.service import Generations
from llmrouter_server.values import CancelledBy

logger = logging.getLogger(__name__)

Requests = AsyncIterator[svc_pb.GenerateRequest | Undecodable]
"""A Generate call's request stream, as the decoding interceptor hands it over."""

PENDING_REJECTIONS = 16
"""Rejections waiting to be written; with more, the steering reader waits (and the
client's request stream with it, by HTTP/2 flow control) until they are."""


async def generate(
    generations: Generations,
    principal: Principal,
    requests: Requests,
    deadline: float | None,
    trace: tuple[tuple[str, str], ...],
) -> AsyncGenerator[svc_pb.GenerateResponse, None]:
    """Serves one Generate call; ``deadline`` is the call's, on ``time.monotonic``.

    The transport (grpc.aio, the gateway) awaits each write before asking for
    the next response, and the caller's cursor holds the producer back once it
    lags by a window, so a slow reader slows the backend instead of filling
    memory. Closing the iteration early (the caller went away) applies the
    generation's disconnect policy.

    Raises:
        RouterError: The call's end: the first request failed, or the generation did.
    """
    generation, cursor = await _open(generations, principal, requests, deadline, trace)

    async def fail(error: RouterError) -> None:
        cursor.fail(error.at(generation.stream_id, cursor.offset))

    rejections: asyncio.Queue[RouterError] = asyncio.Queue(maxsize=PENDING_REJECTIONS)
    steering = guarded(
        _steer(requests, generation, cursor, rejections), "Generate steering reader", fail
    )
    try:
        async for response in _responses(cursor, rejections):
            yield response
    finally:
        steering.cancel()
        generation.close_owner(cursor)


async def _open(
    generations: Generations,
    principal: Principal,
    requests: Requests,
    deadline: float | None,
    trace: tuple[tuple[str, str], ...],
) -> tuple[Generation, Cursor]:
    try:
        first = decoded(await anext(requests))
    except StopAsyncIteration:
        raise InvalidArgument(
            "GenerateRequest.start", "the call ended before a start message"
        ) from None
    action = first.WhichOneof("action")
    if action == "start":
        return generations.start(principal, decode.start_request(first.start, deadline, trace))
    if action == "attach":
        attach = first.attach
        return generations.attach(
            principal, attach.stream_id, attach.from_offset, decode.flow(attach.flow, "attach.flow")
        )
    raise InvalidArgument(
        "GenerateRequest.start", f"the first message must be start, got {action or 'nothing'}"
    )


async def _steer(
    requests: Requests,
    generation: Generation,
    cursor: Cursor,
    rejections: asyncio.Queue[RouterError],
) -> None:
    """Applies the later requests of a call; one it cannot apply is rejected in-band."""
    try:
        async for request in requests:
            try:
                _apply(decoded(request), generation, cursor)
            except RouterError as error:
                await rejections.put(error.at(generation.stream_id, cursor.offset))
    except grpc.RpcError:
        logger.debug("request stream of %s ended abruptly", generation.stream_id)


async def _responses(
    cursor: Cursor, rejections: asyncio.Queue[RouterError]
) -> AsyncIterator[svc_pb.GenerateResponse]:
    """Each event as the cursor gives it, and each rejection as it comes.

    The cursor is asked for the next event only once the last one has been
    written, as a plain loop over ``cursor.next()`` would, so flow control is
    unchanged. When an event is ready it is taken at once; only when the
    cursor would wait (for the producer, for credits) does the wait run in a
    task beside the rejections, so that a rejection is written meanwhile.
    Rejections queued before an event is written go first.
    """
    waiting: asyncio.Task[Event | None] | None = None
    rejection = asyncio.ensure_future(rejections.get())
    try:
        while True:
            if rejection.done():
                yield _rejected(rejection.result())
                rejection = asyncio.ensure_future(rejections.get())
                continue
            while not rejections.empty():  # queued, not yet handed to the getter
                yield _rejected(rejections.get_nowait())
            if waiting is None and _ready(cursor):
                event = await cursor.next()  # returns at once: no task on the usual path
            else:
                waiting = waiting or asyncio.create_task(cursor.next())
                await asyncio.wait((waiting, rejection), return_when=asyncio.FIRST_COMPLETED)
                if rejection.done() or not waiting.done():
                    continue  # a rejection first; the event waits in its task
                event, waiting = waiting.result(), None
            if event is None:
                return
            yield encode.generate_response(event)
    finally:
        _discard(rejection)
        if waiting is not None:
            _discard(waiting)


def _ready(cursor: Cursor) -> bool:
    """True when ``cursor.next()`` returns without waiting: an unread event, and a
    credit for it in CREDIT flow."""
    return cursor.offset < cursor.log.next_offset and cursor.credits != 0


def _rejected(error: RouterError) -> svc_pb.GenerateResponse:
    return svc_pb.GenerateResponse(rejected=encode.command_error(error))


def _discard(task: asyncio.Future[Any]) -> None:
    """Cancels a pending task; retrieves a finished one's exception, so none is reported."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()


def _apply(request: svc_pb.GenerateRequest, generation: Generation, cursor: Cursor) -> None:
    action = request.WhichOneof("action")
    if action == "cancel":
        generation.cancel(CancelledBy.CALLER, request.cancel.reason)
    elif action == "pause":
        generation.pause(request.pause.reason)
    elif action == "resume":
        generation.resume()
    elif action == "grant":
        cursor.grant(request.grant.credits)
    elif action in {"start", "attach"}:
        raise FailedPrecondition(
            f"GenerateRequest.{action}: this call's generation has already started",
            field=f"GenerateRequest.{action}",
        )
    else:
        raise InvalidArgument("GenerateRequest.action", "no action set")
