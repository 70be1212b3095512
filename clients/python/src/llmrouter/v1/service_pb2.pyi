import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from llmrouter.v1 import events_pb2 as _events_pb2
from llmrouter.v1 import generation_pb2 as _generation_pb2
from llmrouter.v1 import operations_pb2 as _operations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GenerateRequest(_message.Message):
    __slots__ = ("start", "attach", "grant", "pause", "resume", "cancel")
    START_FIELD_NUMBER: _ClassVar[int]
    ATTACH_FIELD_NUMBER: _ClassVar[int]
    GRANT_FIELD_NUMBER: _ClassVar[int]
    PAUSE_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    start: _generation_pb2.StartGeneration
    attach: _generation_pb2.AttachGeneration
    grant: _generation_pb2.GrantCredits
    pause: _generation_pb2.PauseGeneration
    resume: _generation_pb2.ResumeGeneration
    cancel: _generation_pb2.CancelGeneration
    def __init__(self, start: _Optional[_Union[_generation_pb2.StartGeneration, _Mapping]] = ..., attach: _Optional[_Union[_generation_pb2.AttachGeneration, _Mapping]] = ..., grant: _Optional[_Union[_generation_pb2.GrantCredits, _Mapping]] = ..., pause: _Optional[_Union[_generation_pb2.PauseGeneration, _Mapping]] = ..., resume: _Optional[_Union[_generation_pb2.ResumeGeneration, _Mapping]] = ..., cancel: _Optional[_Union[_generation_pb2.CancelGeneration, _Mapping]] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("event", "rejected")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    event: _events_pb2.StreamEvent
    rejected: _operations_pb2.CommandError
    def __init__(self, event: _Optional[_Union[_events_pb2.StreamEvent, _Mapping]] = ..., rejected: _Optional[_Union[_operations_pb2.CommandError, _Mapping]] = ...) -> None: ...

class ControlRequest(_message.Message):
    __slots__ = ("request_id", "pause", "resume", "cancel", "status", "watch", "unwatch", "list")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PAUSE_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    WATCH_FIELD_NUMBER: _ClassVar[int]
    UNWATCH_FIELD_NUMBER: _ClassVar[int]
    LIST_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    pause: _operations_pb2.PauseStreamCommand
    resume: _operations_pb2.ResumeStreamCommand
    cancel: _operations_pb2.CancelStreamCommand
    status: _operations_pb2.StreamStatusCommand
    watch: _operations_pb2.WatchStreamsCommand
    unwatch: _operations_pb2.UnwatchStreamsCommand
    list: _operations_pb2.ListStreamsCommand
    def __init__(self, request_id: _Optional[str] = ..., pause: _Optional[_Union[_operations_pb2.PauseStreamCommand, _Mapping]] = ..., resume: _Optional[_Union[_operations_pb2.ResumeStreamCommand, _Mapping]] = ..., cancel: _Optional[_Union[_operations_pb2.CancelStreamCommand, _Mapping]] = ..., status: _Optional[_Union[_operations_pb2.StreamStatusCommand, _Mapping]] = ..., watch: _Optional[_Union[_operations_pb2.WatchStreamsCommand, _Mapping]] = ..., unwatch: _Optional[_Union[_operations_pb2.UnwatchStreamsCommand, _Mapping]] = ..., list: _Optional[_Union[_operations_pb2.ListStreamsCommand, _Mapping]] = ...) -> None: ...

class ControlResponse(_message.Message):
    __slots__ = ("request_id", "status", "list", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIST_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    status: _operations_pb2.StreamStatus
    list: _operations_pb2.StreamList
    error: _operations_pb2.CommandError
    def __init__(self, request_id: _Optional[str] = ..., status: _Optional[_Union[_operations_pb2.StreamStatus, _Mapping]] = ..., list: _Optional[_Union[_operations_pb2.StreamList, _Mapping]] = ..., error: _Optional[_Union[_operations_pb2.CommandError, _Mapping]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("add", "remove", "grant")
    ADD_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    GRANT_FIELD_NUMBER: _ClassVar[int]
    add: _operations_pb2.AddSubscription
    remove: _operations_pb2.RemoveSubscription
    grant: _operations_pb2.SubscriptionCredits
    def __init__(self, add: _Optional[_Union[_operations_pb2.AddSubscription, _Mapping]] = ..., remove: _Optional[_Union[_operations_pb2.RemoveSubscription, _Mapping]] = ..., grant: _Optional[_Union[_operations_pb2.SubscriptionCredits, _Mapping]] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("event", "added", "ended")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    event: _events_pb2.StreamEvent
    added: _operations_pb2.SubscriptionAdded
    ended: _operations_pb2.SubscriptionEnded
    def __init__(self, event: _Optional[_Union[_events_pb2.StreamEvent, _Mapping]] = ..., added: _Optional[_Union[_operations_pb2.SubscriptionAdded, _Mapping]] = ..., ended: _Optional[_Union[_operations_pb2.SubscriptionEnded, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("routes",)
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    routes: _containers.RepeatedCompositeFieldContainer[_operations_pb2.Route]
    def __init__(self, routes: _Optional[_Iterable[_Union[_operations_pb2.Route, _Mapping]]] = ...) -> None: ...

class ListStreamsRequest(_message.Message):
    __slots__ = ("states", "page_size", "page_token")
    STATES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[_operations_pb2.StreamState]
    page_size: int
    page_token: str
    def __init__(self, states: _Optional[_Iterable[_Union[_operations_pb2.StreamState, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListStreamsResponse(_message.Message):
    __slots__ = ("streams", "next_page_token")
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    streams: _containers.RepeatedCompositeFieldContainer[_operations_pb2.StreamStatus]
    next_page_token: str
    def __init__(self, streams: _Optional[_Iterable[_Union[_operations_pb2.StreamStatus, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetStreamRequest(_message.Message):
    __slots__ = ("stream_id", "recent_events")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    RECENT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    recent_events: int
    def __init__(self, stream_id: _Optional[str] = ..., recent_events: _Optional[int] = ...) -> None: ...

class GetStreamResponse(_message.Message):
    __slots__ = ("status", "recent_events")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RECENT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    status: _operations_pb2.StreamStatus
    recent_events: _containers.RepeatedCompositeFieldContainer[_events_pb2.StreamEvent]
    def __init__(self, status: _Optional[_Union[_operations_pb2.StreamStatus, _Mapping]] = ..., recent_events: _Optional[_Iterable[_Union[_events_pb2.StreamEvent, _Mapping]]] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("total", "per_model", "window", "counting_since", "generated_at", "fastest", "slowest", "window_truncated")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PER_MODEL_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    COUNTING_SINCE_FIELD_NUMBER: _ClassVar[int]
    GENERATED_AT_FIELD_NUMBER: _ClassVar[int]
    FASTEST_FIELD_NUMBER: _ClassVar[int]
    SLOWEST_FIELD_NUMBER: _ClassVar[int]
    WINDOW_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    total: _operations_pb2.StatsReport
    per_model: _containers.RepeatedCompositeFieldContainer[_operations_pb2.StatsReport]
    window: _duration_pb2.Duration
    counting_since: _timestamp_pb2.Timestamp
    generated_at: _timestamp_pb2.Timestamp
    fastest: _containers.RepeatedCompositeFieldContainer[_operations_pb2.StreamSample]
    slowest: _containers.RepeatedCompositeFieldContainer[_operations_pb2.StreamSample]
    window_truncated: bool
    def __init__(self, total: _Optional[_Union[_operations_pb2.StatsReport, _Mapping]] = ..., per_model: _Optional[_Iterable[_Union[_operations_pb2.StatsReport, _Mapping]]] = ..., window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., counting_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., generated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fastest: _Optional[_Iterable[_Union[_operations_pb2.StreamSample, _Mapping]]] = ..., slowest: _Optional[_Iterable[_Union[_operations_pb2.StreamSample, _Mapping]]] = ..., window_truncated: _Optional[bool] = ...) -> None: ...
