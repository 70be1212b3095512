import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChatRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHAT_ROLE_UNSPECIFIED: _ClassVar[ChatRole]
    CHAT_ROLE_SYSTEM: _ClassVar[ChatRole]
    CHAT_ROLE_USER: _ClassVar[ChatRole]
    CHAT_ROLE_ASSISTANT: _ClassVar[ChatRole]

class OutputFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_FORMAT_UNSPECIFIED: _ClassVar[OutputFormat]
    OUTPUT_FORMAT_TEXT: _ClassVar[OutputFormat]
    OUTPUT_FORMAT_JSON: _ClassVar[OutputFormat]

class CoalesceMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COALESCE_MODE_UNSPECIFIED: _ClassVar[CoalesceMode]
    COALESCE_MODE_TOKEN: _ClassVar[CoalesceMode]
    COALESCE_MODE_SIZE: _ClassVar[CoalesceMode]
    COALESCE_MODE_TIME: _ClassVar[CoalesceMode]
    COALESCE_MODE_ADAPTIVE: _ClassVar[CoalesceMode]

class FlowMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FLOW_MODE_UNSPECIFIED: _ClassVar[FlowMode]
    FLOW_MODE_AUTO: _ClassVar[FlowMode]
    FLOW_MODE_CREDIT: _ClassVar[FlowMode]

class RoutePolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUTE_POLICY_UNSPECIFIED: _ClassVar[RoutePolicy]
    ROUTE_POLICY_FALLBACK: _ClassVar[RoutePolicy]
    ROUTE_POLICY_RACE: _ClassVar[RoutePolicy]
    ROUTE_POLICY_WEIGHTED: _ClassVar[RoutePolicy]
    ROUTE_POLICY_MERGE: _ClassVar[RoutePolicy]

class MidStreamAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MID_STREAM_ACTION_UNSPECIFIED: _ClassVar[MidStreamAction]
    MID_STREAM_ACTION_CONTINUE: _ClassVar[MidStreamAction]
    MID_STREAM_ACTION_RESTART: _ClassVar[MidStreamAction]
    MID_STREAM_ACTION_FAIL: _ClassVar[MidStreamAction]

class DisconnectAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISCONNECT_ACTION_UNSPECIFIED: _ClassVar[DisconnectAction]
    DISCONNECT_ACTION_CANCEL: _ClassVar[DisconnectAction]
    DISCONNECT_ACTION_DETACH: _ClassVar[DisconnectAction]
CHAT_ROLE_UNSPECIFIED: ChatRole
CHAT_ROLE_SYSTEM: ChatRole
CHAT_ROLE_USER: ChatRole
CHAT_ROLE_ASSISTANT: ChatRole
OUTPUT_FORMAT_UNSPECIFIED: OutputFormat
OUTPUT_FORMAT_TEXT: OutputFormat
OUTPUT_FORMAT_JSON: OutputFormat
COALESCE_MODE_UNSPECIFIED: CoalesceMode
COALESCE_MODE_TOKEN: CoalesceMode
COALESCE_MODE_SIZE: CoalesceMode
COALESCE_MODE_TIME: CoalesceMode
COALESCE_MODE_ADAPTIVE: CoalesceMode
FLOW_MODE_UNSPECIFIED: FlowMode
FLOW_MODE_AUTO: FlowMode
FLOW_MODE_CREDIT: FlowMode
ROUTE_POLICY_UNSPECIFIED: RoutePolicy
ROUTE_POLICY_FALLBACK: RoutePolicy
ROUTE_POLICY_RACE: RoutePolicy
ROUTE_POLICY_WEIGHTED: RoutePolicy
ROUTE_POLICY_MERGE: RoutePolicy
MID_STREAM_ACTION_UNSPECIFIED: MidStreamAction
MID_STREAM_ACTION_CONTINUE: MidStreamAction
MID_STREAM_ACTION_RESTART: MidStreamAction
MID_STREAM_ACTION_FAIL: MidStreamAction
DISCONNECT_ACTION_UNSPECIFIED: DisconnectAction
DISCONNECT_ACTION_CANCEL: DisconnectAction
DISCONNECT_ACTION_DETACH: DisconnectAction

class StartGeneration(_message.Message):
    __slots__ = ("stream_id", "prompt", "messages", "model", "sampling", "stop", "response_format", "stream_options", "flow", "routing", "on_disconnect", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    STREAM_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    ON_DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    prompt: str
    messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    model: str
    sampling: SamplingParams
    stop: _containers.RepeatedScalarFieldContainer[str]
    response_format: ResponseFormat
    stream_options: StreamOptions
    flow: FlowControl
    routing: RoutingOverrides
    on_disconnect: DisconnectPolicy
    labels: _containers.ScalarMap[str, str]
    def __init__(self, stream_id: _Optional[str] = ..., prompt: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ..., model: _Optional[str] = ..., sampling: _Optional[_Union[SamplingParams, _Mapping]] = ..., stop: _Optional[_Iterable[str]] = ..., response_format: _Optional[_Union[ResponseFormat, _Mapping]] = ..., stream_options: _Optional[_Union[StreamOptions, _Mapping]] = ..., flow: _Optional[_Union[FlowControl, _Mapping]] = ..., routing: _Optional[_Union[RoutingOverrides, _Mapping]] = ..., on_disconnect: _Optional[_Union[DisconnectPolicy, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AttachGeneration(_message.Message):
    __slots__ = ("stream_id", "from_offset", "flow")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_OFFSET_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    from_offset: int
    flow: FlowControl
    def __init__(self, stream_id: _Optional[str] = ..., from_offset: _Optional[int] = ..., flow: _Optional[_Union[FlowControl, _Mapping]] = ...) -> None: ...

class GrantCredits(_message.Message):
    __slots__ = ("credits",)
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    credits: int
    def __init__(self, credits: _Optional[int] = ...) -> None: ...

class PauseGeneration(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class ResumeGeneration(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CancelGeneration(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class ChatMessage(_message.Message):
    __slots__ = ("role", "content")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    role: ChatRole
    content: str
    def __init__(self, role: _Optional[_Union[ChatRole, str]] = ..., content: _Optional[str] = ...) -> None: ...

class SamplingParams(_message.Message):
    __slots__ = ("max_tokens", "temperature", "top_p", "top_k", "seed", "presence_penalty", "frequency_penalty")
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_PENALTY_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_PENALTY_FIELD_NUMBER: _ClassVar[int]
    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    seed: int
    presence_penalty: float
    frequency_penalty: float
    def __init__(self, max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., top_k: _Optional[int] = ..., seed: _Optional[int] = ..., presence_penalty: _Optional[float] = ..., frequency_penalty: _Optional[float] = ...) -> None: ...

class ResponseFormat(_message.Message):
    __slots__ = ("format", "json_schema")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    format: OutputFormat
    json_schema: str
    def __init__(self, format: _Optional[_Union[OutputFormat, str]] = ..., json_schema: _Optional[str] = ...) -> None: ...

class Coalescing(_message.Message):
    __slots__ = ("mode", "max_chars", "interval")
    MODE_FIELD_NUMBER: _ClassVar[int]
    MAX_CHARS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    mode: CoalesceMode
    max_chars: int
    interval: _duration_pb2.Duration
    def __init__(self, mode: _Optional[_Union[CoalesceMode, str]] = ..., max_chars: _Optional[int] = ..., interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class StreamOptions(_message.Message):
    __slots__ = ("include_progress", "include_metadata", "include_token_ids", "coalescing")
    INCLUDE_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_METADATA_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    COALESCING_FIELD_NUMBER: _ClassVar[int]
    include_progress: bool
    include_metadata: bool
    include_token_ids: bool
    coalescing: Coalescing
    def __init__(self, include_progress: _Optional[bool] = ..., include_metadata: _Optional[bool] = ..., include_token_ids: _Optional[bool] = ..., coalescing: _Optional[_Union[Coalescing, _Mapping]] = ...) -> None: ...

class FlowControl(_message.Message):
    __slots__ = ("mode", "initial_credits")
    MODE_FIELD_NUMBER: _ClassVar[int]
    INITIAL_CREDITS_FIELD_NUMBER: _ClassVar[int]
    mode: FlowMode
    initial_credits: int
    def __init__(self, mode: _Optional[_Union[FlowMode, str]] = ..., initial_credits: _Optional[int] = ...) -> None: ...

class RoutingOverrides(_message.Message):
    __slots__ = ("policy", "first_token_timeout", "idle_timeout", "max_attempts", "on_mid_stream_failure", "race_after")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    FIRST_TOKEN_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ON_MID_STREAM_FAILURE_FIELD_NUMBER: _ClassVar[int]
    RACE_AFTER_FIELD_NUMBER: _ClassVar[int]
    policy: RoutePolicy
    first_token_timeout: _duration_pb2.Duration
    idle_timeout: _duration_pb2.Duration
    max_attempts: int
    on_mid_stream_failure: MidStreamAction
    race_after: _duration_pb2.Duration
    def __init__(self, policy: _Optional[_Union[RoutePolicy, str]] = ..., first_token_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., idle_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_attempts: _Optional[int] = ..., on_mid_stream_failure: _Optional[_Union[MidStreamAction, str]] = ..., race_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class DisconnectPolicy(_message.Message):
    __slots__ = ("action", "detach_ttl")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    DETACH_TTL_FIELD_NUMBER: _ClassVar[int]
    action: DisconnectAction
    detach_ttl: _duration_pb2.Duration
    def __init__(self, action: _Optional[_Union[DisconnectAction, str]] = ..., detach_ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...
