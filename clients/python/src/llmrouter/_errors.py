"""RouterError: a failed call with its status code and decoded status details."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import operations_pb2 as ops_pb

_DETAILS_KEY = "grpc-status-details-bin"


class RouterError(Exception):
    """A failed call or command.

    Attributes:
        code: The gRPC status code.
        message: The status message; it names the field or stream at fault.
        error_info: The ``google.rpc.ErrorInfo`` detail (domain ``llmrouter.v1``), or None.
        bad_request: The ``google.rpc.BadRequest`` detail listing invalid fields, or None.
        retry_info: The ``google.rpc.RetryInfo`` detail, or None.
        route_failure: The ``llmrouter.v1.RouteFailure`` detail, or None: every
            failed attempt of a generation that failed on its route.
    """

    def __init__(self, code: grpc.StatusCode, message: str, details: tuple[Any, ...] = ()) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.error_info: Any = _first(details, error_details_pb2.ErrorInfo)
        self.bad_request: Any = _first(details, error_details_pb2.BadRequest)
        self.retry_info: Any = _first(details, error_details_pb2.RetryInfo)
        self.route_failure: ev_pb.RouteFailure | None = _first(details, ev_pb.RouteFailure)

    @classmethod
    def from_rpc_error(cls, error: grpc.aio.AioRpcError) -> RouterError:
        """The error a failed call ended with, details decoded from its trailers."""
        details: tuple[Any, ...] = ()
        trailers: Any = error.trailing_metadata() or ()
        for key, value in trailers:
            if key == _DETAILS_KEY and isinstance(value, bytes):
                details = tuple(status_pb2.Status.FromString(value).details)
        return cls(error.code(), error.details() or "", details)

    @classmethod
    def from_command_error(cls, error: ops_pb.CommandError) -> RouterError:
        """A command the server refused in-band (Control) or a failed subscription.

        Its details are decoded as a failed call's are: ``reason`` is the
        ErrorInfo reason (``NOT_FOUND`` for an unknown stream id), ``stream_id``
        the generation, ``bad_request`` the invalid fields.
        """
        return cls(_status_code(error.code), error.message, tuple(error.details))

    @classmethod
    def from_ended(cls, ended: ops_pb.SubscriptionEnded) -> RouterError | None:
        """Why a subscription ended.

        Returns:
            None when it was removed or its generation finished, cancelled
            included (its ``completed`` event says who cancelled it); otherwise
            the code, message and details the server gave (``NOT_FOUND`` for
            an unknown stream id, the generation's error when it failed, ...).
        """
        if not ended.HasField("error") or ended.error.code == 0:
            return None
        return cls.from_command_error(ended.error)

    @property
    def reason(self) -> str:
        """The stable ErrorInfo reason, such as ``NOT_FOUND``; empty when absent."""
        return str(self.error_info.reason) if self.error_info else ""

    @property
    def field(self) -> str:
        """The request field at fault, such as ``start.model``; empty when unknown."""
        return self._metadata("field") or ""

    @property
    def stream_id(self) -> str:
        """The generation the error belongs to; empty when unknown."""
        return self._metadata("stream_id") or ""

    @property
    def offset(self) -> int | None:
        """The offset the next event would have had; None when unknown."""
        offset = self._metadata("offset")
        return None if offset is None else int(offset)

    @property
    def retry_delay(self) -> float | None:
        """The wait in seconds the server asks for before a retry; None when it did not say."""
        if self.retry_info is None:
            return None
        return float(self.retry_info.retry_delay.ToNanoseconds()) / 1e9

    @property
    def attempts(self) -> list[ev_pb.AttemptFailed]:
        """The route's failed attempts, oldest first; empty without a RouteFailure detail."""
        return [] if self.route_failure is None else list(self.route_failure.attempts)

    def _metadata(self, key: str) -> str | None:
        if self.error_info is None or key not in self.error_info.metadata:
            return None
        return str(self.error_info.metadata[key])


def _first(details: tuple[Any, ...], message_type: Any) -> Any:
    """The first detail of ``message_type``, unpacked, or None."""
    for detail in details:
        if detail.Is(message_type.DESCRIPTOR):
            message = message_type()
            detail.Unpack(message)
            return message
    return None


def _status_code(value: int) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return grpc.StatusCode.UNKNOWN
