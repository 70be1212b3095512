import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from llmrouter.v1 import generation_pb2 as _generation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FinishReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINISH_REASON_UNSPECIFIED: _ClassVar[FinishReason]
    FINISH_REASON_STOP: _ClassVar[FinishReason]
    FINISH_REASON_LENGTH: _ClassVar[FinishReason]
    FINISH_REASON_STOP_SEQUENCE: _ClassVar[FinishReason]
    FINISH_REASON_CANCELLED: _ClassVar[FinishReason]
    FINISH_REASON_CONTENT_FILTER: _ClassVar[FinishReason]

class CancelledBy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CANCELLED_BY_UNSPECIFIED: _ClassVar[CancelledBy]
    CANCELLED_BY_CALLER: _ClassVar[CancelledBy]
    CANCELLED_BY_OPERATOR: _ClassVar[CancelledBy]
    CANCELLED_BY_DETACH_TIMEOUT: _ClassVar[CancelledBy]
    CANCELLED_BY_SHUTDOWN: _ClassVar[CancelledBy]
FINISH_REASON_UNSPECIFIED: FinishReason
FINISH_REASON_STOP: FinishReason
FINISH_REASON_LENGTH: FinishReason
FINISH_REASON_STOP_SEQUENCE: FinishReason
FINISH_REASON_CANCELLED: FinishReason
FINISH_REASON_CONTENT_FILTER: FinishReason
CANCELLED_BY_UNSPECIFIED: CancelledBy
CANCELLED_BY_CALLER: CancelledBy
CANCELLED_BY_OPERATOR: CancelledBy
CANCELLED_BY_DETACH_TIMEOUT: CancelledBy
CANCELLED_BY_SHUTDOWN: CancelledBy

class StreamEvent(_message.Message):
    __slots__ = ("stream_id", "offset", "time", "started", "queued", "chunk", "json", "attempt_failed", "fallback_used", "paused", "resumed", "completed", "gap")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FAILED_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_USED_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    GAP_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    offset: int
    time: _timestamp_pb2.Timestamp
    started: Started
    queued: Queued
    chunk: Chunk
    json: JsonSnapshot
    attempt_failed: AttemptFailed
    fallback_used: FallbackUsed
    paused: Paused
    resumed: Resumed
    completed: Completed
    gap: Gap
    def __init__(self, stream_id: _Optional[str] = ..., offset: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started: _Optional[_Union[Started, _Mapping]] = ..., queued: _Optional[_Union[Queued, _Mapping]] = ..., chunk: _Optional[_Union[Chunk, _Mapping]] = ..., json: _Optional[_Union[JsonSnapshot, _Mapping]] = ..., attempt_failed: _Optional[_Union[AttemptFailed, _Mapping]] = ..., fallback_used: _Optional[_Union[FallbackUsed, _Mapping]] = ..., paused: _Optional[_Union[Paused, _Mapping]] = ..., resumed: _Optional[_Union[Resumed, _Mapping]] = ..., completed: _Optional[_Union[Completed, _Mapping]] = ..., gap: _Optional[_Union[Gap, _Mapping]] = ...) -> None: ...

class Started(_message.Message):
    __slots__ = ("route", "model", "backend", "prompt_tokens", "max_tokens")
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    route: str
    model: str
    backend: str
    prompt_tokens: int
    max_tokens: int
    def __init__(self, route: _Optional[str] = ..., model: _Optional[str] = ..., backend: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., max_tokens: _Optional[int] = ...) -> None: ...

class Queued(_message.Message):
    __slots__ = ("position",)
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: int
    def __init__(self, position: _Optional[int] = ...) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("text", "token_count", "token_ids", "progress", "metadata")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    text: str
    token_count: int
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    progress: Progress
    metadata: ChunkMetadata
    def __init__(self, text: _Optional[str] = ..., token_count: _Optional[int] = ..., token_ids: _Optional[_Iterable[int]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., metadata: _Optional[_Union[ChunkMetadata, _Mapping]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("completion_tokens", "max_tokens", "tokens_per_second", "elapsed", "fraction", "eta", "time_to_first_token")
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    ETA_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_FIELD_NUMBER: _ClassVar[int]
    completion_tokens: int
    max_tokens: int
    tokens_per_second: float
    elapsed: _duration_pb2.Duration
    fraction: float
    eta: _duration_pb2.Duration
    time_to_first_token: _duration_pb2.Duration
    def __init__(self, completion_tokens: _Optional[int] = ..., max_tokens: _Optional[int] = ..., tokens_per_second: _Optional[float] = ..., elapsed: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., fraction: _Optional[float] = ..., eta: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., time_to_first_token: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ChunkMetadata(_message.Message):
    __slots__ = ("model", "backend", "attempt", "target", "since_previous", "produced_at")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    SINCE_PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    PRODUCED_AT_FIELD_NUMBER: _ClassVar[int]
    model: str
    backend: str
    attempt: int
    target: int
    since_previous: _duration_pb2.Duration
    produced_at: _timestamp_pb2.Timestamp
    def __init__(self, model: _Optional[str] = ..., backend: _Optional[str] = ..., attempt: _Optional[int] = ..., target: _Optional[int] = ..., since_previous: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., produced_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class JsonSnapshot(_message.Message):
    __slots__ = ("json", "complete")
    JSON_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    json: str
    complete: bool
    def __init__(self, json: _Optional[str] = ..., complete: _Optional[bool] = ...) -> None: ...

class AttemptFailed(_message.Message):
    __slots__ = ("attempt", "model", "backend", "reason", "will_retry", "retry_delay", "target", "error_reason", "http_status", "tokens")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    WILL_RETRY_FIELD_NUMBER: _ClassVar[int]
    RETRY_DELAY_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ERROR_REASON_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    model: str
    backend: str
    reason: str
    will_retry: bool
    retry_delay: _duration_pb2.Duration
    target: int
    error_reason: str
    http_status: int
    tokens: int
    def __init__(self, attempt: _Optional[int] = ..., model: _Optional[str] = ..., backend: _Optional[str] = ..., reason: _Optional[str] = ..., will_retry: _Optional[bool] = ..., retry_delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., target: _Optional[int] = ..., error_reason: _Optional[str] = ..., http_status: _Optional[int] = ..., tokens: _Optional[int] = ...) -> None: ...

class RouteFailure(_message.Message):
    __slots__ = ("attempts",)
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    attempts: _containers.RepeatedCompositeFieldContainer[AttemptFailed]
    def __init__(self, attempts: _Optional[_Iterable[_Union[AttemptFailed, _Mapping]]] = ...) -> None: ...

class JsonOutputInvalid(_message.Message):
    __slots__ = ("text", "path", "rule", "message", "truncated")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    text: str
    path: str
    rule: str
    message: str
    truncated: bool
    def __init__(self, text: _Optional[str] = ..., path: _Optional[str] = ..., rule: _Optional[str] = ..., message: _Optional[str] = ..., truncated: _Optional[bool] = ...) -> None: ...

class FallbackUsed(_message.Message):
    __slots__ = ("from_model", "to_model", "backend", "action", "from_backend", "to_target")
    FROM_MODEL_FIELD_NUMBER: _ClassVar[int]
    TO_MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    FROM_BACKEND_FIELD_NUMBER: _ClassVar[int]
    TO_TARGET_FIELD_NUMBER: _ClassVar[int]
    from_model: str
    to_model: str
    backend: str
    action: _generation_pb2.MidStreamAction
    from_backend: str
    to_target: int
    def __init__(self, from_model: _Optional[str] = ..., to_model: _Optional[str] = ..., backend: _Optional[str] = ..., action: _Optional[_Union[_generation_pb2.MidStreamAction, str]] = ..., from_backend: _Optional[str] = ..., to_target: _Optional[int] = ...) -> None: ...

class Paused(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class Resumed(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Usage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "total_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("queue_time", "time_to_first_token", "total_time", "tokens_per_second")
    QUEUE_TIME_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TIME_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    queue_time: _duration_pb2.Duration
    time_to_first_token: _duration_pb2.Duration
    total_time: _duration_pb2.Duration
    tokens_per_second: float
    def __init__(self, queue_time: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., time_to_first_token: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., total_time: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., tokens_per_second: _Optional[float] = ...) -> None: ...

class Completed(_message.Message):
    __slots__ = ("finish_reason", "usage", "timings", "model", "backend", "attempts", "attempt_usage", "cancelled_by", "cancel_reason")
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_USAGE_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_BY_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REASON_FIELD_NUMBER: _ClassVar[int]
    finish_reason: FinishReason
    usage: Usage
    timings: Timings
    model: str
    backend: str
    attempts: int
    attempt_usage: _containers.RepeatedCompositeFieldContainer[AttemptUsage]
    cancelled_by: CancelledBy
    cancel_reason: str
    def __init__(self, finish_reason: _Optional[_Union[FinishReason, str]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., model: _Optional[str] = ..., backend: _Optional[str] = ..., attempts: _Optional[int] = ..., attempt_usage: _Optional[_Iterable[_Union[AttemptUsage, _Mapping]]] = ..., cancelled_by: _Optional[_Union[CancelledBy, str]] = ..., cancel_reason: _Optional[str] = ...) -> None: ...

class AttemptUsage(_message.Message):
    __slots__ = ("attempt", "target", "model", "backend", "usage")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    target: int
    model: str
    backend: str
    usage: Usage
    def __init__(self, attempt: _Optional[int] = ..., target: _Optional[int] = ..., model: _Optional[str] = ..., backend: _Optional[str] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ...) -> None: ...

class Gap(_message.Message):
    __slots__ = ("from_offset", "to_offset")
    FROM_OFFSET_FIELD_NUMBER: _ClassVar[int]
    TO_OFFSET_FIELD_NUMBER: _ClassVar[int]
    from_offset: int
    to_offset: int
    def __init__(self, from_offset: _Optional[int] = ..., to_offset: _Optional[int] = ...) -> None: ...
