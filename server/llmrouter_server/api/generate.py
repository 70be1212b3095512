"""The Generate RPC: start or attach, stream events, apply steering requests."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import grpc
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.api import decode, encode
from llmrouter_server.api.status import Context, abort
from llmrouter_server.auth.principal import Principal
from llmrouter_server.errors import (
    FailedPrecondition,
    InvalidArgument,
    RouterError,
)
from llmrouter_server.streams.generation import Generation
from llmrouter_server.streams.log import Cursor
from llmrouter_server.streams.service import Generations
from llmrouter_server.values import CancelledBy

logger = logging.getLogger(__name__)


async def generate(
    generations: Generations,
    principal: Principal,
    requests: AsyncIterator[svc_pb.GenerateRequest],
    context: Context,
) -> AsyncIterator[svc_pb.GenerateResponse]:
    """Serves one Generate call.

    grpc.aio awaits each write before asking for the next event, and the
    caller's cursor holds the producer back once it lags by a window, so a
    slow reader slows the backend instead of filling memory.
    """
    try:
        remaining = context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + remaining
        generation, cursor = await _open(generations, principal, requests, deadline)
    except RouterError as error:
        await abort(context, error)
    steering = asyncio.create_task(_steer(requests, generation, cursor))
    try:
        while (event := await cursor.next()) is not None:
            yield encode.generate_response(event)
    except RouterError as error:
        await abort(context, error)
    finally:
        steering.cancel()
        generation.close_owner(cursor)


async def _open(
    generations: Generations,
    principal: Principal,
    requests: AsyncIterator[svc_pb.GenerateRequest],
    deadline: float | None,
) -> tuple[Generation, Cursor]:
    try:
        first = await anext(requests)
    except StopAsyncIteration:
        raise InvalidArgument(
            "GenerateRequest.start", "the call ended before a start message"
        ) from None
    action = first.WhichOneof("action")
    if action == "start":
        return generations.start(principal, decode.start_request(first.start, deadline))
    if action == "attach":
        attach = first.attach
        return generations.attach(
            principal, attach.stream_id, attach.from_offset, decode.flow(attach.flow)
        )
    raise InvalidArgument(
        "GenerateRequest.start", f"the first message must be start, got {action or 'nothing'}"
    )


async def _steer(
    requests: AsyncIterator[svc_pb.GenerateRequest], generation: Generation, cursor: Cursor
) -> None:
    """Applies the later requests of a call; a bad one ends the call with its status."""
    try:
        async for request in requests:
            _apply(request, generation, cursor)
    except RouterError as error:
        cursor.fail(error.at(generation.stream_id, cursor.offset))
    except grpc.RpcError:
        logger.debug("request stream of %s ended abruptly", generation.stream_id)


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
