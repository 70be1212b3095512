"""The RouterService servicer: decode, call the domain, encode, map errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from llmrouter_server.api import decode, encode
from llmrouter_server.api.status import abort
from llmrouter_server.errors import (
    FailedPrecondition,
    InvalidArgument,
    RouterError,
    Unimplemented,
)
from llmrouter_server.streams.generation import Generation
from llmrouter_server.streams.request import GenerationRequest
from llmrouter_server.streams.service import Generations

Context = grpc.aio.ServicerContext[object, object]

logger = logging.getLogger(__name__)


class RouterServicer(svc_grpc.RouterServiceServicer):
    """Serves ``llmrouter.v1.RouterService`` over the domain's ``Generations``."""

    def __init__(self, generations: Generations) -> None:
        self._generations = generations

    async def Generate(  # noqa: N802 - the RPC's name
        self, request_iterator: AsyncIterator[svc_pb.GenerateRequest], context: Context
    ) -> AsyncIterator[svc_pb.GenerateResponse]:
        """Starts a generation from the first request and streams its events.

        grpc.aio awaits each write before asking for the next event, so a slow
        reader holds the generation back through the bounded hand-off.
        """
        try:
            generation = self._generations.start(await _start_message(request_iterator))
        except RouterError as error:
            await abort(context, error)
        steering = asyncio.create_task(_steer(request_iterator, generation))
        try:
            async for event in generation.events():
                yield encode.generate_response(event)
        except RouterError as error:
            await abort(context, error)
        finally:
            steering.cancel()
            generation.cancel()

    async def ListModels(  # noqa: N802 - the RPC's name
        self, request: svc_pb.ListModelsRequest, context: Context
    ) -> svc_pb.ListModelsResponse:
        """Lists the configured routes."""
        router = self._generations.router
        return encode.list_models_response(router.routes(), router.default_route)

    async def Control(  # noqa: N802 - the RPC's name
        self, request_iterator: AsyncIterator[svc_pb.ControlRequest], context: Context
    ) -> AsyncIterator[svc_pb.ControlResponse]:
        """Not implemented yet."""
        await abort(context, _unimplemented("Control"))
        yield svc_pb.ControlResponse()  # never reached: makes this a streaming handler

    async def Subscribe(  # noqa: N802 - the RPC's name
        self, request_iterator: AsyncIterator[svc_pb.SubscribeRequest], context: Context
    ) -> AsyncIterator[svc_pb.SubscribeResponse]:
        """Not implemented yet."""
        await abort(context, _unimplemented("Subscribe"))
        yield svc_pb.SubscribeResponse()  # never reached: makes this a streaming handler

    async def ListStreams(  # noqa: N802 - the RPC's name
        self, request: svc_pb.ListStreamsRequest, context: Context
    ) -> svc_pb.ListStreamsResponse:
        """Not implemented yet."""
        await abort(context, _unimplemented("ListStreams"))

    async def GetStream(  # noqa: N802 - the RPC's name
        self, request: svc_pb.GetStreamRequest, context: Context
    ) -> svc_pb.GetStreamResponse:
        """Not implemented yet."""
        await abort(context, _unimplemented("GetStream"))

    async def GetStats(  # noqa: N802 - the RPC's name
        self, request: svc_pb.GetStatsRequest, context: Context
    ) -> svc_pb.GetStatsResponse:
        """Not implemented yet."""
        await abort(context, _unimplemented("GetStats"))


async def _start_message(requests: AsyncIterator[svc_pb.GenerateRequest]) -> GenerationRequest:
    try:
        first = await anext(requests)
    except StopAsyncIteration:
        raise InvalidArgument(
            "GenerateRequest.start", "the call ended before a start message"
        ) from None
    action = first.WhichOneof("action")
    if action == "start":
        return decode.start_request(first.start)
    if action == "attach":
        raise Unimplemented(
            "GenerateRequest.attach: re-attaching is not implemented yet",
            field="GenerateRequest.attach",
        )
    raise InvalidArgument(
        "GenerateRequest.start", f"the first message must be start, got {action or 'nothing'}"
    )


async def _steer(requests: AsyncIterator[svc_pb.GenerateRequest], generation: Generation) -> None:
    """Applies the later requests of a Generate call to its generation."""
    try:
        async for request in requests:
            _apply(request, generation)
    except grpc.RpcError:
        logger.debug("request stream of %s ended abruptly", generation.stream_id)


def _apply(request: svc_pb.GenerateRequest, generation: Generation) -> None:
    """Applies one steering request."""
    action = request.WhichOneof("action")
    if action == "cancel":
        generation.cancel()
    elif action in {"start", "attach"}:
        generation.cancel(
            FailedPrecondition(
                f"GenerateRequest.{action}: this call's generation has already started",
                field=f"GenerateRequest.{action}",
            )
        )
    elif action is None:
        generation.cancel(InvalidArgument("GenerateRequest.action", "no action set"))
    else:
        generation.cancel(
            Unimplemented(
                f"GenerateRequest.{action}: not implemented yet", field=f"GenerateRequest.{action}"
            )
        )


def _unimplemented(rpc: str) -> Unimplemented:
    return Unimplemented(f"llmrouter.v1.RouterService/{rpc} is not implemented yet")
