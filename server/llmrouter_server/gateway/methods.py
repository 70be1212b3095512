"""RouterService's methods as the gateway calls them: the contract's names and types,
the api layer's handlers.

The table is read from the service descriptor, so every method of the
contract is here with its request type and streaming shape; the handlers are
the ones the gRPC servicer runs. A method the table has no handler for is a
bug the construction reports at start.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server.api.control import control
from llmrouter_server.api.decoding import ROUTER_SERVICE, Undecodable, decoded
from llmrouter_server.api.generate import generate
from llmrouter_server.api.lookups import Lookups
from llmrouter_server.api.subscribe import subscribe
from llmrouter_server.auth.principal import Principal
from llmrouter_server.errors import InvalidArgument
from llmrouter_server.gateway.parsing import parse
from llmrouter_server.streams.service import Generations

Requests = AsyncIterator[Any]
"""A call's request messages (each a request of its method's type, or an
``Undecodable``), as the socket parsed them."""

Serve = Callable[
    [Principal, Requests, float | None, tuple[tuple[str, str], ...]], AsyncGenerator[Any, None]
]
"""Runs one call: the caller, its requests, its deadline (``time.monotonic``) and
trace context; yields its responses and raises ``RouterError`` to end it."""


@dataclass(frozen=True, slots=True)
class Method:
    """One RouterService method."""

    name: str
    """As the contract names it, e.g. ``Generate``."""
    request_type: type[Message]
    client_streaming: bool
    serve: Serve

    def parse(self, message: dict[str, Any]) -> Message | Undecodable:
        """The request message from its proto3 JSON; one that does not fit the type
        is an ``Undecodable`` whose error names the field (``parsing``)."""
        return parse(self.request_type, message)


def router_methods(generations: Generations, lookups: Lookups) -> dict[str, Method]:
    """Every RouterService method by name.

    Raises:
        LookupError: The contract has a method without a handler here.
    """
    streaming: dict[str, Serve] = {
        "Generate": lambda principal, requests, deadline, trace: generate(
            generations, principal, requests, deadline, trace
        ),
        "Control": lambda principal, requests, _deadline, _trace: control(
            generations, principal, requests
        ),
        "Subscribe": lambda principal, requests, _deadline, _trace: subscribe(
            generations, principal, requests
        ),
    }
    unary: dict[str, Callable[[Principal, Any], Message]] = {
        "ListModels": lookups.list_models,
        "ListStreams": lookups.list_streams,
        "GetStream": lookups.get_stream,
        "GetStats": lookups.get_stats,
    }
    methods = {}
    for descriptor in ROUTER_SERVICE.methods:
        name = descriptor.name
        if name in streaming:
            serve = streaming[name]
        elif name in unary:
            serve = _unary(unary[name])
        else:
            raise LookupError(f"the gateway has no handler for RouterService/{name}")
        request_type = getattr(svc_pb, descriptor.input_type.name)
        methods[name] = Method(name, request_type, descriptor.client_streaming, serve)
    return methods


def _unary(lookup: Callable[[Principal, Any], Any]) -> Serve:
    async def serve(
        principal: Principal,
        requests: Requests,
        _deadline: float | None,
        _trace: tuple[tuple[str, str], ...],
    ) -> AsyncGenerator[Message, None]:
        request = await anext(requests, None)
        if request is None:
            raise InvalidArgument("frame.message", "a unary call needs its request message")
        yield lookup(principal, decoded(request))

    return serve
