"""The server interceptor that turns credentials into the caller's principal.

With an ``auth`` section every call outside ``auth.public_services`` must
carry ``authorization: Bearer <key>`` metadata with a known key, or come over
mutual TLS with a client certificate whose common name is configured; else
it ends UNAUTHENTICATED before the servicer runs. The principal is put in a
context variable of the call's task; the servicer reads it with ``caller()``
and hands it to the domain, which never sees metadata.

Without an ``auth`` section this interceptor is not installed and every
caller is ``OPEN`` (one tenant, sees everything), as the servicer is told.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeAlias

import grpc

from llmrouter_server.api.decoding import DecodingInterceptor
from llmrouter_server.api.status import Context, abort
from llmrouter_server.auth.keys import Authenticator
from llmrouter_server.auth.principal import OPEN, Principal
from llmrouter_server.config import Config
from llmrouter_server.errors import RouterError, Unauthenticated

_CALLER: ContextVar[Principal | None] = ContextVar("llmrouter_caller", default=None)

_Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
_Behavior = Callable[[Any, Context], Any]


def caller(open_access: bool) -> Principal:
    """The principal of the call being served.

    Args:
        open_access: True when the server runs without ``auth``.

    Raises:
        Unauthenticated: Auth is on and the interceptor did not identify the call.
    """
    if open_access:
        return OPEN
    principal = _CALLER.get()
    if principal is None:
        raise Unauthenticated("the call carries no credentials")
    return principal


def interceptors(
    config: Config, authenticator: Authenticator | None = None
) -> list[grpc.aio.ServerInterceptor[Any, Any]]:
    """The server's interceptors for this configuration, outermost first.

    Request parsing (``decoding``) is always on, inside authentication: a
    caller is identified before anything it sent is looked at. With ``auth``,
    ``authenticator`` (one the gateway shares) or a new one checks the keys.
    """
    decoding: grpc.aio.ServerInterceptor[Any, Any] = DecodingInterceptor()
    if config.auth is None:
        return [decoding]
    public = frozenset(config.auth.public_services)
    keys = authenticator or Authenticator(config.auth)
    return [AuthInterceptor(keys, public), decoding]


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg] # generic in the stubs only
    """Identifies every call to a non-public service, or ends it UNAUTHENTICATED."""

    def __init__(self, authenticator: Authenticator, public_services: frozenset[str]) -> None:
        self._authenticator = authenticator
        self._public = public_services

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler:
        """Wraps the method's handler so that it identifies the caller first."""
        handler = await continuation(handler_call_details)
        service = handler_call_details.method.strip("/").partition("/")[0]
        if handler is None or service in self._public:
            return handler
        return _wrap(handler, self.identify)

    def identify(self, context: Context) -> Principal:
        """The principal of a call's credentials.

        Raises:
            Unauthenticated: No credentials, or ones the server does not know.
        """
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str):
                return self._authenticator.by_authorization(value, "authorization metadata")
        names = context.auth_context().get("x509_common_name", [])
        for name in names:
            principal = self._authenticator.by_certificate(name.decode(errors="replace"))
            if principal is not None:
                return principal
        if names:
            raise Unauthenticated("the client certificate names no configured identity")
        raise Unauthenticated("the call carries no credentials: send 'authorization: Bearer <key>'")


def _wrap(handler: _Handler, identify: Callable[[Context], Principal]) -> _Handler:
    codec = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.response_streaming:
        inner_stream: _Behavior = handler.stream_stream or handler.unary_stream  # type: ignore[assignment]

        async def streaming(request: Any, context: Context) -> AsyncIterator[Any]:
            await _identified(identify, context)
            async for response in inner_stream(request, context):
                yield response

        if handler.request_streaming:
            return grpc.stream_stream_rpc_method_handler(streaming, **codec)
        return grpc.unary_stream_rpc_method_handler(streaming, **codec)
    inner_unary: _Behavior = handler.stream_unary or handler.unary_unary  # type: ignore[assignment]

    async def unary(request: Any, context: Context) -> Any:
        await _identified(identify, context)
        return await inner_unary(request, context)

    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(unary, **codec)
    return grpc.unary_unary_rpc_method_handler(unary, **codec)


async def _identified(identify: Callable[[Context], Principal], context: Context) -> None:
    """Sets the call's principal, or ends the call with the authentication error."""
    try:
        _CALLER.set(identify(context))
    except RouterError as error:
        await abort(context, error)
