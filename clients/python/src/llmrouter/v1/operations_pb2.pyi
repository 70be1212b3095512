import datetime

from google.protobuf import any_pb2 as _any_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from llmrouter.v1 import events_pb2 as _events_pb2
from llmrouter.v1 import generation_pb2 as _generation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STREAM_STATE_UNSPECIFIED: _ClassVar[StreamState]
    STREAM_STATE_QUEUED: _ClassVar[StreamState]
    STREAM_STATE_RUNNING: _ClassVar[StreamState]
    STREAM_STATE_PAUSED: _ClassVar[StreamState]
    STREAM_STATE_COMPLETED: _ClassVar[StreamState]
    STREAM_STATE_FAILED: _ClassVar[StreamState]
    STREAM_STATE_CANCELLED: _ClassVar[StreamState]

class SlowSubscriberPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SLOW_SUBSCRIBER_POLICY_UNSPECIFIED: _ClassVar[SlowSubscriberPolicy]
    SLOW_SUBSCRIBER_POLICY_BLOCK: _ClassVar[SlowSubscriberPolicy]
    SLOW_SUBSCRIBER_POLICY_SKIP: _ClassVar[SlowSubscriberPolicy]
    SLOW_SUBSCRIBER_POLICY_DISCONNECT: _ClassVar[SlowSubscriberPolicy]

class BackendKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_KIND_UNSPECIFIED: _ClassVar[BackendKind]
    BACKEND_KIND_EMBEDDED: _ClassVar[BackendKind]
    BACKEND_KIND_OPENAI: _ClassVar[BackendKind]
    BACKEND_KIND_ANTHROPIC: _ClassVar[BackendKind]

class CircuitState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CIRCUIT_STATE_UNSPECIFIED: _ClassVar[CircuitState]
    CIRCUIT_STATE_CLOSED: _ClassVar[CircuitState]
    CIRCUIT_STATE_OPEN: _ClassVar[CircuitState]
    CIRCUIT_STATE_HALF_OPEN: _ClassVar[CircuitState]
STREAM_STATE_UNSPECIFIED: StreamState
STREAM_STATE_QUEUED: StreamState
STREAM_STATE_RUNNING: StreamState
STREAM_STATE_PAUSED: StreamState
STREAM_STATE_COMPLETED: StreamState
STREAM_STATE_FAILED: StreamState
STREAM_STATE_CANCELLED: StreamState
SLOW_SUBSCRIBER_POLICY_UNSPECIFIED: SlowSubscriberPolicy
SLOW_SUBSCRIBER_POLICY_BLOCK: SlowSubscriberPolicy
SLOW_SUBSCRIBER_POLICY_SKIP: SlowSubscriberPolicy
SLOW_SUBSCRIBER_POLICY_DISCONNECT: SlowSubscriberPolicy
BACKEND_KIND_UNSPECIFIED: BackendKind
BACKEND_KIND_EMBEDDED: BackendKind
BACKEND_KIND_OPENAI: BackendKind
BACKEND_KIND_ANTHROPIC: BackendKind
CIRCUIT_STATE_UNSPECIFIED: CircuitState
CIRCUIT_STATE_CLOSED: CircuitState
CIRCUIT_STATE_OPEN: CircuitState
CIRCUIT_STATE_HALF_OPEN: CircuitState

class StreamStatus(_message.Message):
    __slots__ = ("stream_id", "state", "route", "model", "backend", "next_offset", "first_retained_offset", "usage", "finish_reason", "created_at", "finished_at", "consumers", "error", "labels", "tenant")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    NEXT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    FIRST_RETAINED_OFFSET_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    CONSUMERS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    state: StreamState
    route: str
    model: str
    backend: str
    next_offset: int
    first_retained_offset: int
    usage: _events_pb2.Usage
    finish_reason: _events_pb2.FinishReason
    created_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    consumers: int
    error: CommandError
    labels: _containers.ScalarMap[str, str]
    tenant: str
    def __init__(self, stream_id: _Optional[str] = ..., state: _Optional[_Union[StreamState, str]] = ..., route: _Optional[str] = ..., model: _Optional[str] = ..., backend: _Optional[str] = ..., next_offset: _Optional[int] = ..., first_retained_offset: _Optional[int] = ..., usage: _Optional[_Union[_events_pb2.Usage, _Mapping]] = ..., finish_reason: _Optional[_Union[_events_pb2.FinishReason, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., consumers: _Optional[int] = ..., error: _Optional[_Union[CommandError, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., tenant: _Optional[str] = ...) -> None: ...

class StreamList(_message.Message):
    __slots__ = ("streams",)
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    streams: _containers.RepeatedCompositeFieldContainer[StreamStatus]
    def __init__(self, streams: _Optional[_Iterable[_Union[StreamStatus, _Mapping]]] = ...) -> None: ...

class CommandError(_message.Message):
    __slots__ = ("code", "message", "details")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    details: _containers.RepeatedCompositeFieldContainer[_any_pb2.Any]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., details: _Optional[_Iterable[_Union[_any_pb2.Any, _Mapping]]] = ...) -> None: ...

class PauseStreamCommand(_message.Message):
    __slots__ = ("stream_id", "reason")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    reason: str
    def __init__(self, stream_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ResumeStreamCommand(_message.Message):
    __slots__ = ("stream_id",)
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    def __init__(self, stream_id: _Optional[str] = ...) -> None: ...

class CancelStreamCommand(_message.Message):
    __slots__ = ("stream_id", "reason")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    reason: str
    def __init__(self, stream_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class StreamStatusCommand(_message.Message):
    __slots__ = ("stream_id",)
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    def __init__(self, stream_id: _Optional[str] = ...) -> None: ...

class WatchStreamsCommand(_message.Message):
    __slots__ = ("stream_ids",)
    STREAM_IDS_FIELD_NUMBER: _ClassVar[int]
    stream_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, stream_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class UnwatchStreamsCommand(_message.Message):
    __slots__ = ("stream_ids",)
    STREAM_IDS_FIELD_NUMBER: _ClassVar[int]
    stream_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, stream_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListStreamsCommand(_message.Message):
    __slots__ = ("states",)
    STATES_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[StreamState]
    def __init__(self, states: _Optional[_Iterable[_Union[StreamState, str]]] = ...) -> None: ...

class AddSubscription(_message.Message):
    __slots__ = ("stream_id", "from_offset", "flow", "slow_policy")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_OFFSET_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    SLOW_POLICY_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    from_offset: int
    flow: _generation_pb2.FlowControl
    slow_policy: SlowSubscriberPolicy
    def __init__(self, stream_id: _Optional[str] = ..., from_offset: _Optional[int] = ..., flow: _Optional[_Union[_generation_pb2.FlowControl, _Mapping]] = ..., slow_policy: _Optional[_Union[SlowSubscriberPolicy, str]] = ...) -> None: ...

class RemoveSubscription(_message.Message):
    __slots__ = ("stream_id",)
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    def __init__(self, stream_id: _Optional[str] = ...) -> None: ...

class SubscriptionCredits(_message.Message):
    __slots__ = ("stream_id", "credits")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    credits: int
    def __init__(self, stream_id: _Optional[str] = ..., credits: _Optional[int] = ...) -> None: ...

class SubscriptionAdded(_message.Message):
    __slots__ = ("stream_id", "from_offset", "state")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_OFFSET_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    from_offset: int
    state: StreamState
    def __init__(self, stream_id: _Optional[str] = ..., from_offset: _Optional[int] = ..., state: _Optional[_Union[StreamState, str]] = ...) -> None: ...

class SubscriptionEnded(_message.Message):
    __slots__ = ("stream_id", "next_offset", "error")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    NEXT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    next_offset: int
    error: CommandError
    def __init__(self, stream_id: _Optional[str] = ..., next_offset: _Optional[int] = ..., error: _Optional[_Union[CommandError, _Mapping]] = ...) -> None: ...

class RouteTarget(_message.Message):
    __slots__ = ("backend", "kind", "model", "circuit", "in_flight", "queued", "max_concurrency", "weight")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    backend: str
    kind: BackendKind
    model: str
    circuit: CircuitState
    in_flight: int
    queued: int
    max_concurrency: int
    weight: int
    def __init__(self, backend: _Optional[str] = ..., kind: _Optional[_Union[BackendKind, str]] = ..., model: _Optional[str] = ..., circuit: _Optional[_Union[CircuitState, str]] = ..., in_flight: _Optional[int] = ..., queued: _Optional[int] = ..., max_concurrency: _Optional[int] = ..., weight: _Optional[int] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("name", "policy", "targets", "is_default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    policy: _generation_pb2.RoutePolicy
    targets: _containers.RepeatedCompositeFieldContainer[RouteTarget]
    is_default: bool
    def __init__(self, name: _Optional[str] = ..., policy: _Optional[_Union[_generation_pb2.RoutePolicy, str]] = ..., targets: _Optional[_Iterable[_Union[RouteTarget, _Mapping]]] = ..., is_default: _Optional[bool] = ...) -> None: ...

class LatencySummary(_message.Message):
    __slots__ = ("p50", "p90", "p99", "count", "p95")
    P50_FIELD_NUMBER: _ClassVar[int]
    P90_FIELD_NUMBER: _ClassVar[int]
    P99_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    P95_FIELD_NUMBER: _ClassVar[int]
    p50: _duration_pb2.Duration
    p90: _duration_pb2.Duration
    p99: _duration_pb2.Duration
    count: int
    p95: _duration_pb2.Duration
    def __init__(self, p50: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., p90: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., p99: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., count: _Optional[int] = ..., p95: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class StatsReport(_message.Message):
    __slots__ = ("model", "streams_created", "streams_completed", "streams_failed", "streams_cancelled", "success_rate", "time_to_first_token", "inter_token", "tokens_per_second", "completion_tokens", "streams_running", "recent_completed", "recent_failed", "recent_cancelled", "recent_completion_tokens", "errors")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STREAMS_CREATED_FIELD_NUMBER: _ClassVar[int]
    STREAMS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FAILED_FIELD_NUMBER: _ClassVar[int]
    STREAMS_CANCELLED_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INTER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    STREAMS_RUNNING_FIELD_NUMBER: _ClassVar[int]
    RECENT_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    RECENT_FAILED_FIELD_NUMBER: _ClassVar[int]
    RECENT_CANCELLED_FIELD_NUMBER: _ClassVar[int]
    RECENT_COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    model: str
    streams_created: int
    streams_completed: int
    streams_failed: int
    streams_cancelled: int
    success_rate: float
    time_to_first_token: LatencySummary
    inter_token: LatencySummary
    tokens_per_second: float
    completion_tokens: int
    streams_running: int
    recent_completed: int
    recent_failed: int
    recent_cancelled: int
    recent_completion_tokens: int
    errors: _containers.RepeatedCompositeFieldContainer[ErrorCount]
    def __init__(self, model: _Optional[str] = ..., streams_created: _Optional[int] = ..., streams_completed: _Optional[int] = ..., streams_failed: _Optional[int] = ..., streams_cancelled: _Optional[int] = ..., success_rate: _Optional[float] = ..., time_to_first_token: _Optional[_Union[LatencySummary, _Mapping]] = ..., inter_token: _Optional[_Union[LatencySummary, _Mapping]] = ..., tokens_per_second: _Optional[float] = ..., completion_tokens: _Optional[int] = ..., streams_running: _Optional[int] = ..., recent_completed: _Optional[int] = ..., recent_failed: _Optional[int] = ..., recent_cancelled: _Optional[int] = ..., recent_completion_tokens: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[ErrorCount, _Mapping]]] = ...) -> None: ...

class ErrorCount(_message.Message):
    __slots__ = ("reason", "code", "count", "last_message", "last_failed_at")
    REASON_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LAST_FAILED_AT_FIELD_NUMBER: _ClassVar[int]
    reason: str
    code: int
    count: int
    last_message: str
    last_failed_at: _timestamp_pb2.Timestamp
    def __init__(self, reason: _Optional[str] = ..., code: _Optional[int] = ..., count: _Optional[int] = ..., last_message: _Optional[str] = ..., last_failed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StreamSample(_message.Message):
    __slots__ = ("stream_id", "route", "model", "backend", "tokens_per_second", "time_to_first_token", "duration", "completion_tokens", "finished_at", "tenant")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    route: str
    model: str
    backend: str
    tokens_per_second: float
    time_to_first_token: _duration_pb2.Duration
    duration: _duration_pb2.Duration
    completion_tokens: int
    finished_at: _timestamp_pb2.Timestamp
    tenant: str
    def __init__(self, stream_id: _Optional[str] = ..., route: _Optional[str] = ..., model: _Optional[str] = ..., backend: _Optional[str] = ..., tokens_per_second: _Optional[float] = ..., time_to_first_token: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., completion_tokens: _Optional[int] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tenant: _Optional[str] = ...) -> None: ...
