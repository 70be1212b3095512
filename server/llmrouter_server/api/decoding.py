"""Request bytes are parsed here, where a failure is an answer, never inside grpc.

grpc's generated registration parses each request message with its type's
``FromString``. Bytes that do not parse raise inside grpc: a unary call ends
UNKNOWN with the parser's exception in its message, and a streaming call's
request iterator breaks, which leaves the call hanging or ends it without a
word. ``DecodingInterceptor`` gives every RouterService method a deserializer
that returns ``Undecodable`` instead of raising, so each RPC answers the bad
message on its own call (``decoded`` turns it into INVALID_ARGUMENT naming
the message type) and goes on with the messages after it. The other
services (health, reflection) have no in-band answer: there an undecodable
message ends its call INVALID_ARGUMENT before the servicer sees it.

It sits inside the authentication interceptor, which wraps behaviours and
keeps the deserializer it finds: a caller without credentials is refused
before anything it sent is looked at.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.api.status import Context, abort
from llmrouter_server.errors import InvalidArgument

logger = logging.getLogger(__name__)

ROUTER_SERVICE = svc_pb.DESCRIPTOR.services_by_name["RouterService"]
"""``llmrouter.v1.RouterService``, whose requests the interceptor parses by default."""

_Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
_Request = TypeVar("_Request")


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A request message whose bytes did not parse as its type."""

    type_name: str
    """The message type, e.g. ``ListStreamsRequest``."""
    detail: str
    """What the parser said, for the server's debug log only."""
    field: str = ""
    """The field the client is told about; the type name when empty."""
    message: str = "the message could not be decoded"
    """What the client is told: binary protobuf errors say nothing useful, the
    JSON parser's (the gateway's) name the field."""

    def error(self) -> InvalidArgument:
        """The error a client gets for this message."""
        return InvalidArgument(self.field or self.type_name, self.message)


def decoded(request: _Request | Undecodable) -> _Request:
    """The request as parsed.

    Raises:
        InvalidArgument: The bytes did not parse; the message names the type.
    """
    if isinstance(request, Undecodable):
        raise request.error()
    return request


class DecodingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg] # generic in the stubs only
    """Gives each method of one service a deserializer that never raises."""

    def __init__(self, service: ServiceDescriptor = ROUTER_SERVICE) -> None:
        """Covers the methods of ``service``; other services are left as they are."""
        self._inputs = {
            f"/{service.full_name}/{method.name}": method.input_type.name
            for method in service.methods
        }

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler:
        """The method's handler, parsing its requests with ``lenient``."""
        handler = await continuation(handler_call_details)
        behavior = None if handler is None else _behavior(handler)
        if handler is None or behavior is None or handler.request_deserializer is None:
            return handler
        parse = handler.request_deserializer
        type_name = self._inputs.get(handler_call_details.method)
        if type_name is not None:  # the service answers an Undecodable itself
            return _with(handler, behavior, lenient(parse, type_name))
        if not (inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)):
            return handler  # a synchronous servicer, which this server does not have
        type_name = _message_name(parse) or handler_call_details.method
        refusing = _refusing(behavior, streaming_requests=handler.request_streaming)
        return _with(handler, refusing, lenient(parse, type_name))


def lenient(parse: Callable[[bytes], Any], type_name: str) -> Callable[[bytes], Any]:
    """``parse``, returning ``Undecodable`` where it would raise."""

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as error:  # whatever the parser refuses, the bytes are the client's
            logger.debug("undecodable %s: %s", type_name, error)
            return Undecodable(type_name, str(error))

    return deserialize


_FACTORIES: dict[tuple[bool, bool], Callable[..., _Handler]] = {
    (True, True): grpc.stream_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (False, False): grpc.unary_unary_rpc_method_handler,
}
"""The handler factory of each (request streaming, response streaming) shape."""


def _behavior(handler: _Handler) -> Callable[..., Any] | None:
    """The handler's one behaviour, whatever its shape."""
    return (
        handler.stream_stream or handler.stream_unary or handler.unary_stream or handler.unary_unary
    )


def _with(
    handler: _Handler, behavior: Callable[..., Any], deserialize: Callable[..., Any]
) -> _Handler:
    """A handler of the same shape and serializer with this behaviour and deserializer."""
    factory = _FACTORIES[handler.request_streaming, handler.response_streaming]
    return factory(
        behavior,
        request_deserializer=deserialize,
        response_serializer=handler.response_serializer,
    )


def _message_name(parse: Callable[[bytes], Any]) -> str | None:
    """The message type a generated ``FromString`` parses, e.g. ``HealthCheckRequest``."""
    descriptor = getattr(getattr(parse, "__self__", None), "DESCRIPTOR", None)
    name = getattr(descriptor, "name", None)
    return name if isinstance(name, str) else None


def _refusing(behavior: Callable[..., Any], *, streaming_requests: bool) -> Callable[..., Any]:
    """``behavior`` (in its own style, as grpc.aio tells them apart) behind a check that
    ends the call INVALID_ARGUMENT at the first undecodable request."""

    async def checked(requests: Any, context: Context) -> Any:
        if streaming_requests:
            return _refuse_in(requests, context)
        if isinstance(requests, Undecodable):
            await abort(context, requests.error())
        return requests

    if inspect.isasyncgenfunction(behavior):

        async def streaming(requests: Any, context: Context) -> AsyncIterator[Any]:
            async for response in behavior(await checked(requests, context), context):
                yield response

        return streaming

    async def direct(requests: Any, context: Context) -> Any:
        return await behavior(await checked(requests, context), context)

    return direct


async def _refuse_in(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, Undecodable):
            await abort(context, request.error())
        yield request
