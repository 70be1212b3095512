"""Maps domain errors to gRPC status codes and rich details: the only place.

Every status carries a ``google.rpc.ErrorInfo`` (domain ``llmrouter.v1``, a
stable reason, and the field, stream id and offset where known); invalid
arguments add a ``google.rpc.BadRequest``; invalid JSON output adds a
``JsonOutputInvalid`` with the whole text; limits with a known wait add a
``google.rpc.RetryInfo``.
"""

from __future__ import annotations

import math
from typing import NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from llmrouter.v1 import events_pb2 as ev_pb

from llmrouter_server import errors
from llmrouter_server.api.attempts import attempt_failed

Context = grpc.aio.ServicerContext[object, object]
"""The servicer context of any RPC."""

DOMAIN = "llmrouter.v1"
"""The ErrorInfo domain of every error this server returns."""

_CODES: dict[type[errors.RouterError], grpc.StatusCode] = {
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Cancelled: grpc.StatusCode.CANCELLED,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Internal: grpc.StatusCode.INTERNAL,
    errors.Unimplemented: grpc.StatusCode.UNIMPLEMENTED,
}


_REFUSED_BY_CONFIGURATION = frozenset({401, 403, 404})
"""Upstream statuses that say the router's key or model name is wrong, not the request."""


def status_code(error: errors.RouterError) -> grpc.StatusCode:
    """The gRPC status code of a domain error."""
    if isinstance(error, errors.RouteFailed):
        if error.rate_limited:
            return grpc.StatusCode.RESOURCE_EXHAUSTED
        return _backend_code(error.last)
    if isinstance(error, errors.BackendError):
        return _backend_code(error)
    for cls in type(error).__mro__:
        if cls in _CODES:
            return _CODES[cls]
    return grpc.StatusCode.UNKNOWN


def _backend_code(error: errors.BackendError) -> grpc.StatusCode:
    if error.retryable:
        return grpc.StatusCode.UNAVAILABLE
    status = getattr(error, "status", None)
    if status in _REFUSED_BY_CONFIGURATION:
        return grpc.StatusCode.FAILED_PRECONDITION
    # The backend refused the request as given (too long, a schema it cannot use).
    return grpc.StatusCode.INVALID_ARGUMENT


def rich_status(error: errors.RouterError) -> status_pb2.Status:
    """The ``google.rpc.Status`` of a domain error: code, message and rich details."""
    return status_pb2.Status(
        code=status_code(error).value[0], message=error.message, details=details(error)
    )


def to_status(error: errors.RouterError) -> grpc.Status:
    """The status, message and rich details of a domain error, for grpc's abort."""
    return rpc_status.to_status(rich_status(error))


def details(error: errors.RouterError) -> list[any_pb2.Any]:
    """The rich details of a domain error, for a status or an in-band command error."""
    details = [_pack(_error_info(error))]
    if isinstance(error, errors.InvalidArgument) and error.field:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=error.field, description=error.message
        )
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[violation])))
    if isinstance(error, errors.RouteFailed):
        details.append(_pack(_route_failure(error)))
    if isinstance(error, errors.JsonOutputInvalid):
        details.append(_pack(_json_output_invalid(error)))
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(math.ceil(retry_after * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return details


async def abort(
    context: grpc.aio.ServicerContext[object, object], error: errors.RouterError
) -> NoReturn:
    """Ends the call with the error's status."""
    status = to_status(error)
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("context.abort returned")  # pragma: no cover


def _route_failure(error: errors.RouteFailed) -> ev_pb.RouteFailure:
    return ev_pb.RouteFailure(attempts=[attempt_failed(failed) for failed in error.attempts])


_DETAIL_TEXT_LIMIT = 4096
"""UTF-8 bytes of the output a ``JsonOutputInvalid`` detail carries: status details
travel in a trailer, and gRPC refuses trailers much over 8 KiB."""


def _json_output_invalid(error: errors.JsonOutputInvalid) -> ev_pb.JsonOutputInvalid:
    # The text goes here, not in ErrorInfo metadata, whose values are meant to be short.
    text = error.text.encode()[:_DETAIL_TEXT_LIMIT].decode(errors="ignore")
    return ev_pb.JsonOutputInvalid(
        text=text,
        path=error.path,
        rule=error.rule,
        message=error.detail,
        truncated=len(text) < len(error.text),
    )


def _error_info(error: errors.RouterError) -> error_details_pb2.ErrorInfo:
    backend = error.last.backend if isinstance(error, errors.RouteFailed) else None
    metadata = {
        "field": error.field,
        "stream_id": error.stream_id,
        "offset": None if error.offset is None else str(error.offset),
        "backend": backend or getattr(error, "backend", None),
        "attempts": str(len(error.attempts)) if isinstance(error, errors.RouteFailed) else None,
    }
    return error_details_pb2.ErrorInfo(
        reason=error.reason,
        domain=DOMAIN,
        metadata={key: value for key, value in metadata.items() if value is not None},
    )


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed
