"""The one error hierarchy of llmrouter.

Domain code raises these; the gRPC layer maps them to status codes in exactly
one place (``api/status.py``)::

    RouterError
    ├── Unauthenticated       no credentials, or credentials the server does not know
    ├── PermissionDenied      known credentials whose role does not allow the call
    ├── InvalidArgument       a request field is wrong (names the field)
    ├── NotFound              an unknown model, route or stream
    ├── AlreadyExists         a client-chosen stream id is taken
    ├── FailedPrecondition    an action the stream's state does not allow
    │   └── JsonOutputInvalid     the output asked to be JSON is not, or fails its schema
    ├── OutOfRange            an offset beyond the end or already evicted
    ├── ResourceExhausted     over a limit; may say when to retry
    ├── Cancelled             cancelled by another client
    ├── Unavailable           the server is shutting down
    ├── Internal              a bug in the server
    ├── Unimplemented         part of the contract that is not built yet
    ├── RouteFailed           every attempt the route allowed failed (lists them)
    └── BackendError          one attempt on one backend failed
        ├── BackendConnectError   the backend could not be reached, or the connection broke
        ├── BackendTimeout        no answer, first token or next token in time
        │   └── BackendStalled        no first token, or no next token, within the route's limit
        ├── BackendStatusError    the backend answered with an error status
        └── BackendProtocolError  a malformed event, or the stream ended before its end

A ``BackendError`` is one attempt's failure: routing decides whether another
attempt follows. Only ``RouteFailed`` ends a generation because of backends.

``ConfigError`` is separate: it stops the server from starting and never
reaches a client.
"""

from __future__ import annotations

from dataclasses import dataclass


class RouterError(Exception):
    """Base of every error a client can see.

    Attributes:
        message: What went wrong, naming the field or stream at fault.
        field: The request field at fault, as a dotted path, if any.
        stream_id: The generation the error belongs to, if any.
        offset: The offset of the next event the generation would have sent.
        reason: A stable, machine-readable UPPER_SNAKE_CASE reason.
    """

    reason = "ROUTER_ERROR"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        stream_id: str | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.stream_id = stream_id
        self.offset = offset

    def at(self, stream_id: str, offset: int) -> RouterError:
        """Records the stream and offset the error ended, and returns self."""
        self.stream_id = stream_id
        self.offset = offset
        return self


class Unauthenticated(RouterError):
    """The call carries no credentials, or credentials the server does not accept."""

    reason = "UNAUTHENTICATED"


class PermissionDenied(RouterError):
    """The caller is known but its role does not allow this call or option."""

    reason = "PERMISSION_DENIED"


class InvalidArgument(RouterError):
    """A request field has a value the server cannot accept."""

    reason = "INVALID_ARGUMENT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)


class NotFound(RouterError):
    """A named model, route or stream does not exist."""

    reason = "NOT_FOUND"


class AlreadyExists(RouterError):
    """A client-chosen stream id names an existing generation."""

    reason = "ALREADY_EXISTS"


class FailedPrecondition(RouterError):
    """The action is not allowed in the current state."""

    reason = "FAILED_PRECONDITION"


class JsonOutputInvalid(FailedPrecondition):
    """The output asked to be JSON is not one JSON value, or fails the request's schema.

    The request was valid and nothing was lost in transit: the model produced
    something else (prose, a value cut off by ``max_tokens`` or a stop
    sequence, a value the schema rejects). It is FAILED_PRECONDITION, not
    UNAVAILABLE: a client (ours included) retries or re-attaches on
    UNAVAILABLE, and the same request would most likely end the same way until
    something changes (more ``max_tokens``, other stop sequences, a route whose
    model constrains its output, a simpler schema).

    Attributes:
        text: The whole output, as it was streamed.
        path: Where the schema failed, as a JSON path (``$.items[2].price``);
            empty when the text is not JSON.
        rule: The schema keyword that failed (``type``), or ``json`` when the
            text is not JSON.
        detail: What the rule says is wrong, without the path.
    """

    reason = "JSON_OUTPUT_INVALID"

    def __init__(
        self, message: str, *, text: str, rule: str, path: str = "", detail: str = ""
    ) -> None:
        super().__init__(message)
        self.text = text
        self.path = path
        self.rule = rule
        self.detail = detail or message


class OutOfRange(RouterError):
    """An offset is beyond the end of a stream or already evicted."""

    reason = "OUT_OF_RANGE"


class ResourceExhausted(RouterError):
    """A limit was hit.

    Attributes:
        retry_after: Seconds after which a retry may succeed, if known.
    """

    reason = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Cancelled(RouterError):
    """The generation was cancelled by someone other than its caller."""

    reason = "CANCELLED"


class Unavailable(RouterError):
    """The server cannot take the request now (shutting down, every circuit open).

    Attributes:
        retry_after: Seconds after which a retry may succeed, if known.
    """

    reason = "UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(RouterError):
    """The call's own deadline passed (a gateway call's ``timeoutMs``)."""

    reason = "DEADLINE_EXCEEDED"


class Internal(RouterError):
    """A bug: the server failed in a way it did not expect."""

    reason = "INTERNAL"


class Unimplemented(RouterError):
    """A part of the contract that this server version does not implement."""

    reason = "UNIMPLEMENTED"


class BackendError(RouterError):
    """One attempt on one backend failed.

    Attributes:
        backend: The configured backend name.
        detail: What happened, in the router's words, without the backend name.
        retryable: True when another attempt (here or elsewhere) may succeed.
        retry_after: Seconds the backend asked us to wait before the next try.
    """

    reason = "BACKEND_ERROR"

    def __init__(
        self,
        backend: str,
        detail: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"backend {backend!r}: {detail}")
        self.backend = backend
        self.detail = detail
        self.retryable = retryable
        self.retry_after = retry_after


class BackendConnectError(BackendError):
    """The backend could not be reached."""

    reason = "BACKEND_CONNECT"

    def __init__(self, backend: str, message: str) -> None:
        super().__init__(backend, message, retryable=True)


class BackendTimeout(BackendError):
    """The backend did not answer in time."""

    reason = "BACKEND_TIMEOUT"

    def __init__(self, backend: str, message: str) -> None:
        super().__init__(backend, message, retryable=True)


class BackendStalled(BackendTimeout):
    """An attempt produced no first token, or no next token, within the route's limit.

    Its message already says when ("no token for 2.0 s after token 10").
    """


class BackendStatusError(BackendError):
    """The backend answered with an HTTP error status.

    Attributes:
        status: The HTTP status code.
        retry_after: Seconds from a Retry-After header, if any.
    """

    reason = "BACKEND_STATUS"

    def __init__(
        self, backend: str, status: int, message: str, *, retry_after: float | None = None
    ) -> None:
        retryable = status in {408, 429} or status >= 500
        super().__init__(
            backend, f"HTTP {status}: {message}", retryable=retryable, retry_after=retry_after
        )
        self.status = status


class BackendProtocolError(BackendError):
    """The backend's stream broke its protocol: a malformed event, or it ended early."""

    reason = "BACKEND_PROTOCOL"

    def __init__(self, backend: str, message: str) -> None:
        super().__init__(backend, message, retryable=True)


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    """One failed attempt: the ``attempt_failed`` event a generation records, and
    an entry of the list ``RouteFailed`` carries."""

    attempt: int
    """The attempt, counting from 1."""
    target: int
    """The target's index in its route."""
    model: str
    """The target's model."""
    reason: str
    """What went wrong and when ("... after 10 tokens"), without the backend's name."""
    tokens: int
    """Tokens the attempt produced before it failed."""
    error: BackendError
    """The failure; its message names the backend and says when."""
    will_retry: bool
    """True when another attempt follows."""
    retry_delay: float
    """Seconds before that attempt."""
    time: float
    """Wall-clock time of the failure (seconds since the epoch)."""

    @property
    def backend(self) -> str:
        """The target's backend."""
        return self.error.backend

    @property
    def error_reason(self) -> str:
        """The stable class of the failure."""
        return self.error.reason

    @property
    def http_status(self) -> int:
        """The backend's HTTP status, 0 when there was none."""
        return self.error.status if isinstance(self.error, BackendStatusError) else 0


class RouteFailed(RouterError):
    """Every attempt the route allowed failed, or a failure allowed no other attempt.

    Maps to RESOURCE_EXHAUSTED when every failure was a 429, to the status of a
    non-retryable failure when one ended the route, otherwise UNAVAILABLE.

    Attributes:
        attempts: Each failed attempt, in order.
        last: The failure that ended the route (its ``reason`` is the route's).
        retry_after: The shortest wait any backend asked for, if any did.
    """

    def __init__(self, message: str, attempts: tuple[FailedAttempt, ...]) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last = attempts[-1].error
        waits = [a.error.retry_after for a in attempts if a.error.retry_after is not None]
        self.retry_after = min(waits) if waits else None
        self.reason = self.last.reason

    @property
    def rate_limited(self) -> bool:
        """True when every attempt was refused with HTTP 429."""
        return all(
            isinstance(a.error, BackendStatusError) and a.error.status == 429 for a in self.attempts
        )


class ConfigError(Exception):
    """The configuration is invalid; the message names the key at fault."""
