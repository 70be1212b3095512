"""Fuzzing: random well-formed and malformed requests on every RPC get documented answers.

Hypothesis draws a fixed (derandomized) list of cases: calls on Generate,
Control and Subscribe carrying sequences of valid messages with random field
values (unknown enum numbers, NaN, huge or negative durations, made-up ids),
mutated and raw undecodable bytes, clients that hang up midway; and unary
lookups likewise. They run against one in-process server, a few at a time,
while a normal generation runs alongside from before the first case to after
the last. Then:

- every status the server ended a call with (seen server-side by
  ``StatusRecorder``) is one the contract documents (``ANSWERED``), and so is
  every in-band error code; never UNKNOWN or INTERNAL. Clients see those, or
  their own deadline; the one exception is grpc-python's own: when its aio
  client writes on a call the server has just ended, it reports a made-up
  INTERNAL ("Internal error from Core") instead of the status it got. Those
  are counted apart (``write_races``), their server status is in the tally;
- nothing was logged at ERROR or with a traceback, and the event loop's
  exception handler was never called;
- the generation alongside completed with its exact text;
- once every finished generation is pruned, the memory the fuzzing allocated
  (tracemalloc) is back within ``MEMORY_TOLERANCE`` of the baseline.

``LLMROUTER_FUZZ_EXAMPLES`` sets the number of cases (``make fuzz`` runs
2000); the counts, codes, duration and memory go to
``.tools/fuzz-report.json`` and are printed (``-s`` shows them).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import time
import tracemalloc
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import psutil
import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import service_pb2 as svc_pb

from llmrouter_server import app as app_module
from llmrouter_server.backends.base import BackendRequest, Delta
from llmrouter_server.backends.scripted import ScriptedBackend, words
from llmrouter_server.values import FinishReason, Usage
from tests.helpers import Served, scripted_config, serving, start, text

EXAMPLES = int(os.environ.get("LLMROUTER_FUZZ_EXAMPLES", "500"))
"""Cases per run: a few hundred in ``make test``, more in ``make fuzz``."""

CONCURRENCY = 8
"""Cases in flight at once."""

CASE_SECONDS = 1.0
"""Deadline of each fuzzed call; a call left waiting (paused, watching) ends DEADLINE_EXCEEDED."""

MEMORY_TOLERANCE = 2 * 1024 * 1024
"""Bytes that the fuzzing may leave allocated (tracemalloc) once everything finished is
pruned: interpreter caches that grow with the variety of inputs, not with their count."""

REPORT = Path(__file__).resolve().parents[2] / ".tools" / "fuzz-report.json"
"""Where the numbers of the last run go."""

ANSWERED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,  # a bad field, an undecodable message
    grpc.StatusCode.NOT_FOUND,  # an unknown model, route or stream
    grpc.StatusCode.ALREADY_EXISTS,  # a taken stream id
    grpc.StatusCode.FAILED_PRECONDITION,  # a state that does not allow it; JSON output invalid
    grpc.StatusCode.OUT_OF_RANGE,  # an offset past the end or evicted
    grpc.StatusCode.RESOURCE_EXHAUSTED,  # a limit
    grpc.StatusCode.UNAVAILABLE,  # a route whose attempts failed (a tiny timeout override)
    grpc.StatusCode.UNIMPLEMENTED,  # GetStats
    grpc.StatusCode.CANCELLED,  # the call was cancelled: the client hung up, or its deadline passed
}
"""Statuses the server may end a call with for something a client sent (what the
server sets, seen by ``StatusRecorder``). Never UNKNOWN, never INTERNAL."""

RECEIVED = ANSWERED | {grpc.StatusCode.DEADLINE_EXCEEDED}
"""Statuses a client may see: the server's, and its own deadline on a call left waiting."""

IN_BAND = {code.value[0] for code in ANSWERED - {grpc.StatusCode.OK}}
"""Codes a rejection or an in-band error may carry."""

SERVICE = "/llmrouter.v1.RouterService/"
RESPONSES: dict[str, type[Message]] = {
    "Generate": svc_pb.GenerateResponse,
    "Control": svc_pb.ControlResponse,
    "Subscribe": svc_pb.SubscribeResponse,
    "ListModels": svc_pb.ListModelsResponse,
    "ListStreams": svc_pb.ListStreamsResponse,
    "GetStream": svc_pb.GetStreamResponse,
    "GetStats": svc_pb.GetStatsResponse,
}

ALONGSIDE = "the keeper climbed the stairs and lit the lamp before the storm came in"
"""The text of the generation that runs alongside the fuzzing, a word per batch."""

CONFIG = scripted_config(
    "fake",
    "paced",
    "alongside",
    limits={
        "max_tokens_cap": 64,
        "default_max_tokens": 32,
        "max_hold_seconds": 1.0,
        "max_subscriptions_per_call": 3,
        "max_watches_per_call": 3,
    },
    streams={
        "retain_seconds": 0.5,
        "default_detach_seconds": 0.5,
        "max_detach_seconds": 1.0,
        "release_after_seconds": 0.5,
    },
)


class SteppedBackend:
    """Answers ``ALONGSIDE`` a word at a time, each once ``step`` is called."""

    kind = "scripted"
    supports_json = False
    max_concurrency = 1

    def __init__(self) -> None:
        self.name = "alongside"
        self._steps = asyncio.Semaphore(0)

    def step(self, count: int = 1) -> None:
        """Lets ``count`` more words out."""
        for _ in range(count):
            self._steps.release()

    async def stream(self, request: BackendRequest) -> AsyncGenerator[Delta, None]:
        pieces = words(ALONGSIDE)
        for piece in pieces:
            await self._steps.acquire()
            yield Delta(text=piece.text, token_count=1)
        yield Delta(finish_reason=FinishReason.STOP, usage=Usage(1, len(pieces)))

    async def close(self) -> None:
        """Nothing to release."""


# What a case is made of.

STREAM_IDS = st.sampled_from(["", "fuzz-a", "fuzz-b", "fuzz-c", "nope", "bad id!", "x" * 200])
SHORT_TEXT = st.text(max_size=12)
ENUMS = st.integers(-2, 9)
INT32 = st.integers(-5, 80) | st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
UINT32 = st.integers(0, 8) | st.integers(0, 2**32 - 1)
UINT64 = st.integers(0, 40) | st.integers(0, 2**64 - 1)
FLOATS = st.floats(width=32)
DURATIONS = st.fixed_dictionaries(
    {
        "seconds": st.integers(-3, 3) | st.integers(-(2**40), 2**40),
        "nanos": st.integers(-(10**9), 10**9),
    }
)
SCHEMAS = st.sampled_from(
    [
        "",
        "{}",
        '{"type": "object"}',
        "{type",
        "[" * 200,
        '{"$ref": "#/nope"}',
        '{"$ref": "http://127.0.0.1:9/x"}',
        '{"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}',
        '{"$schema": []}',
        '{"type": 5}',
    ]
) | st.text(max_size=20)
JUNK = st.sampled_from(
    [b"\xff\xff\xff", b"\x32\x03\x0a\x01\xff", b"\x0a\xff", b"\x08"]
) | st.binary(min_size=1, max_size=40)


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


FLOWS = _optional(mode=ENUMS, initial_credits=UINT32)

STARTS = st.fixed_dictionaries(
    {"prompt": st.sampled_from(["", "hi", "tell me a story"]) | SHORT_TEXT},
    optional={
        "stream_id": STREAM_IDS,
        "messages": st.lists(_optional(role=ENUMS, content=SHORT_TEXT), max_size=3),
        "model": st.sampled_from(["", "fake-model", "paced-model", "nope", "fake/m", "paced/x"]),
        "sampling": _optional(
            max_tokens=INT32,
            temperature=FLOATS,
            top_p=FLOATS,
            top_k=INT32,
            seed=INT64,
            presence_penalty=FLOATS,
            frequency_penalty=FLOATS,
        ),
        "stop": st.lists(SHORT_TEXT, max_size=3),
        "response_format": _optional(format=ENUMS, json_schema=SCHEMAS),
        "stream_options": _optional(
            include_progress=st.booleans(),
            include_metadata=st.booleans(),
            include_token_ids=st.booleans(),
            coalescing=_optional(mode=ENUMS, max_chars=UINT32, interval=DURATIONS),
        ),
        "labels": st.dictionaries(SHORT_TEXT, SHORT_TEXT, max_size=3),
        "flow": FLOWS,
        "on_disconnect": _optional(action=ENUMS, detach_ttl=DURATIONS),
        "routing": _optional(
            policy=ENUMS,
            first_token_timeout=DURATIONS,
            idle_timeout=DURATIONS,
            max_attempts=UINT32,
            on_mid_stream_failure=ENUMS,
            race_after=DURATIONS,
        ),
    },
).map(lambda fields: gen_pb.StartGeneration(**fields))

ATTACHES = st.builds(gen_pb.AttachGeneration, stream_id=STREAM_IDS, from_offset=UINT64, flow=FLOWS)


def _generate(**action: Any) -> svc_pb.GenerateRequest:
    return svc_pb.GenerateRequest(**action)


VALID_STARTS = st.builds(
    gen_pb.StartGeneration,
    prompt=st.just("hi"),
    model=st.sampled_from(["fake-model", "paced-model"]),
    flow=st.sampled_from([{}, {"mode": gen_pb.FLOW_MODE_CREDIT, "initial_credits": 2}]),
    on_disconnect=st.sampled_from([{}, {"action": gen_pb.DISCONNECT_ACTION_DETACH}]),
)
"""Starts that succeed, so that the steering after them meets a running generation."""

FIRST_GENERATE = st.one_of(
    VALID_STARTS.map(lambda m: _generate(start=m)),
    VALID_STARTS.map(lambda m: _generate(start=m)),
    STARTS.map(lambda m: _generate(start=m)),
    ATTACHES.map(lambda m: _generate(attach=m)),
    st.just(_generate()),
)
STEERING = st.one_of(
    UINT32.map(lambda credits: _generate(grant={"credits": credits})),
    SHORT_TEXT.map(lambda reason: _generate(pause={"reason": reason})),
    st.just(_generate(resume={})),
    SHORT_TEXT.map(lambda reason: _generate(cancel={"reason": reason})),
    st.just(_generate()),
    FIRST_GENERATE,
)

CONTROLS = st.one_of(
    st.builds(svc_pb.ControlRequest, request_id=SHORT_TEXT),
    *[
        st.builds(
            svc_pb.ControlRequest,
            request_id=SHORT_TEXT,
            **{command: st.builds(dict, stream_id=STREAM_IDS)},
        )
        for command in ("pause", "resume", "cancel", "status")
    ],
    *[
        st.builds(
            svc_pb.ControlRequest,
            request_id=SHORT_TEXT,
            **{command: st.builds(dict, stream_ids=st.lists(STREAM_IDS, max_size=5))},
        )
        for command in ("watch", "unwatch")
    ],
    st.builds(
        svc_pb.ControlRequest,
        request_id=SHORT_TEXT,
        list=st.builds(dict, states=st.lists(ENUMS, max_size=3)),
    ),
)

SUBSCRIBES = st.one_of(
    st.just(svc_pb.SubscribeRequest()),
    st.builds(
        svc_pb.SubscribeRequest,
        add=st.builds(
            dict, stream_id=STREAM_IDS, from_offset=UINT64, slow_policy=ENUMS, flow=FLOWS
        ),
    ),
    st.builds(svc_pb.SubscribeRequest, remove=st.builds(dict, stream_id=STREAM_IDS)),
    st.builds(svc_pb.SubscribeRequest, grant=st.builds(dict, stream_id=STREAM_IDS, credits=UINT32)),
)

LOOKUPS = {
    "ListModels": st.just(svc_pb.ListModelsRequest()),
    "ListStreams": st.builds(
        svc_pb.ListStreamsRequest,
        states=st.lists(ENUMS, max_size=3),
        page_size=UINT32,
        page_token=st.sampled_from(["", "0", "1", "99999999999999999999", "-1", "²"]) | SHORT_TEXT,
    ),
    "GetStream": st.builds(svc_pb.GetStreamRequest, stream_id=STREAM_IDS, recent_events=UINT32),
    "GetStats": st.builds(svc_pb.GetStatsRequest, model=SHORT_TEXT),
}


@st.composite
def _bytes(draw: st.DrawFn, messages: st.SearchStrategy[Message]) -> bytes:
    """A message serialized; or mangled (truncated, a byte changed); or junk."""
    data = draw(messages).SerializeToString()
    how = draw(st.sampled_from(["as is"] * 6 + ["truncated", "changed", "junk"]))
    if how == "junk":
        return draw(JUNK)
    if how == "as is" or not data:
        return data
    index = draw(st.integers(0, len(data) - 1))
    if how == "truncated":
        return data[:index]
    return data[:index] + bytes([draw(st.integers(0, 255))]) + data[index + 1 :]


@dataclass(frozen=True)
class Case:
    """One fuzzed call."""

    rpc: str
    """The method, e.g. ``Generate``."""
    messages: tuple[bytes, ...]
    """What the client writes, in order, before it half-closes."""
    hang_up_after: int | None
    """Cancel the call after this many responses; None reads to the end."""


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A call on any RPC: well-formed, malformed or undecodable messages."""
    rpc = draw(
        st.sampled_from(["Generate"] * 4 + ["Control"] * 2 + ["Subscribe"] * 2 + list(LOOKUPS))
    )
    if rpc in LOOKUPS:
        return Case(rpc, (draw(_bytes(LOOKUPS[rpc])),), None)
    if rpc == "Generate":
        messages = [draw(_bytes(FIRST_GENERATE)), *draw(st.lists(_bytes(STEERING), max_size=6))]
    else:
        messages = draw(st.lists(_bytes(CONTROLS if rpc == "Control" else SUBSCRIBES), max_size=6))
    return Case(rpc, tuple(messages), draw(st.none() | st.integers(1, 4)))


def draw_cases(count: int) -> list[Case]:
    """``count`` cases, the same ones on every run."""
    drawn: list[Case] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(cases())
    def collect(case: Case) -> None:
        drawn.append(case)

    collect()
    return drawn


# Running the cases.


@dataclass
class Tally:
    """What came back, and what the server answered."""

    received: Counter[str] = field(default_factory=Counter)
    """``RPC status`` of every call, as the client saw it."""
    answered: Counter[str] = field(default_factory=Counter)
    """``RPC status`` of every call, as the server ended it (the test's own calls too:
    the generation alongside, the ListStreams calls waiting for pruning)."""
    in_band: Counter[str] = field(default_factory=Counter)
    """``RPC code`` of every rejection and in-band error."""
    write_races: int = 0
    """Calls whose client wrote after the server had ended them; grpc-python's aio client
    then reports its own INTERNAL ("Internal error from Core") instead of the server's
    status (which ``answered`` has)."""
    unexpected: list[str] = field(default_factory=list)
    """What fell outside the contract, and the case it came from."""

    def received_status(self, case: Case, error: grpc.aio.AioRpcError | None) -> None:
        code = grpc.StatusCode.OK if error is None else error.code()
        if error is not None and _write_race(error):
            self.write_races += 1
        elif code not in RECEIVED:
            self.unexpected.append(f"received {code.name} for {case}")
        self.received[f"{case.rpc} {code.name}"] += 1

    def answered_status(self, rpc: str, code: grpc.StatusCode) -> None:
        self.answered[f"{rpc} {code.name}"] += 1
        if code not in ANSWERED:
            self.unexpected.append(f"answered {code.name} on {rpc}")

    def in_band_code(self, case: Case, value: int) -> None:
        name = _CODES[value].name if value in _CODES else str(value)
        self.in_band[f"{case.rpc} {name}"] += 1
        if value not in IN_BAND:
            self.unexpected.append(f"in-band {name} for {case}")


_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _write_race(error: grpc.aio.AioRpcError) -> bool:
    """True for the INTERNAL grpc-python's client makes up when a write fails on a call
    the server has already ended (the status it got is then lost)."""
    return (
        error.code() == grpc.StatusCode.INTERNAL
        and error.details() == "Internal error from Core"
        and "SendMessageOperation" in (error.debug_error_string() or "")
    )


def _in_band(response: Any) -> int | None:
    """The code of a rejection or in-band error; None for anything else."""
    if isinstance(response, svc_pb.GenerateResponse):
        assert response.HasField("event") != response.HasField("rejected"), response
        return response.rejected.code if response.HasField("rejected") else None
    if isinstance(response, svc_pb.ControlResponse):
        return response.error.code if response.WhichOneof("result") == "error" else None
    if isinstance(response, svc_pb.SubscribeResponse) and response.HasField("ended"):
        return response.ended.error.code or None
    return None


async def run(channel: grpc.aio.Channel, case: Case, tally: Tally) -> None:
    """Makes the call; records its status and in-band codes."""
    try:
        hung_up = await _call(channel, case, tally)
    except grpc.aio.AioRpcError as error:
        tally.received_status(case, error)
    else:
        if hung_up:
            tally.received[f"{case.rpc} CANCELLED (the client hung up)"] += 1
        else:
            tally.received_status(case, None)


async def _call(channel: grpc.aio.Channel, case: Case, tally: Tally) -> bool:
    """Makes the call, reading every response; True when it hung up as the case says."""
    method = SERVICE + case.rpc
    deserialize = RESPONSES[case.rpc].FromString
    if case.rpc not in ("Generate", "Control", "Subscribe"):
        lookup = channel.unary_unary(
            method, request_serializer=bytes, response_deserializer=deserialize
        )
        await lookup(case.messages[0], timeout=CASE_SECONDS)
        return False
    call = channel.stream_stream(
        method, request_serializer=bytes, response_deserializer=deserialize
    )(iter(case.messages), timeout=CASE_SECONDS)
    count = 0
    async for response in call:
        if (code := _in_band(response)) is not None:
            tally.in_band_code(case, code)
        count += 1
        if count == case.hang_up_after:
            return call.cancel()
    return False


class StatusRecorder(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Tells the tally the status each RouterService call ended with, as the server set it."""

    def __init__(self, tally: Tally) -> None:
        self._tally = tally

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or not details.method.startswith(SERVICE):
            return handler
        rpc = details.method.removeprefix(SERVICE)
        codec = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(
                self._streaming(rpc, handler.stream_stream), **codec
            )
        return grpc.unary_unary_rpc_method_handler(self._unary(rpc, handler.unary_unary), **codec)

    def _streaming(self, rpc: str, behaviour: Any) -> Any:
        async def streaming(requests: Any, context: Any) -> AsyncIterator[Any]:
            try:
                async for response in behaviour(requests, context):
                    yield response
            except BaseException as error:
                self._ended(rpc, context, error)
                raise
            self._ended(rpc, context, None)

        return streaming

    def _unary(self, rpc: str, behaviour: Any) -> Any:
        async def unary(request: Any, context: Any) -> Any:
            try:
                response = await behaviour(request, context)
            except BaseException as error:
                self._ended(rpc, context, error)
                raise
            self._ended(rpc, context, None)
            return response

        return unary

    def _ended(self, rpc: str, context: Any, error: BaseException | None) -> None:
        if isinstance(error, asyncio.CancelledError | GeneratorExit):
            code = grpc.StatusCode.CANCELLED
        elif error is not None and not isinstance(error, grpc.aio.AbortError):
            code = grpc.StatusCode.UNKNOWN  # what grpc answers for an exception it did not expect
        else:
            code = context.code() or grpc.StatusCode.OK
            code = _CODES[code] if isinstance(code, int) else code
        self._tally.answered_status(rpc, code)


# The test.


class _Errors(logging.Handler):
    """Keeps every record at ERROR or above, and every record carrying a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture
async def server_errors() -> AsyncIterator[list[str]]:
    """What was logged as an error, or handed to the event loop's exception handler."""
    handler = _Errors()
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    logging.getLogger().addHandler(handler)
    loop.set_exception_handler(
        lambda _, context: handler.records.append(f"event loop: {context.get('message')}")
    )
    try:
        yield handler.records
    finally:
        logging.getLogger().removeHandler(handler)
        loop.set_exception_handler(previous)


async def _pruned(served: Served) -> None:
    """Waits until no generation is retained (ListStreams prunes as it lists)."""
    async with asyncio.timeout(10):
        while (await served.stub.ListStreams(svc_pb.ListStreamsRequest())).streams:  # noqa: ASYNC110 - retention is time-based
            await asyncio.sleep(0.1)


def _traced() -> int:
    """Bytes allocated since tracing started and still alive, after a full collection."""
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@pytest.mark.timeout(60 + EXAMPLES // 5)
async def test_fuzzed_requests_get_documented_answers_and_nothing_else_breaks(
    server_errors: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = draw_cases(EXAMPLES)
    warmup, main = cases[: len(cases) // 10], cases[len(cases) // 10 :]
    tally = Tally()
    interceptors = app_module.interceptors
    monkeypatch.setattr(
        app_module,
        "interceptors",
        lambda config, *keys: [StatusRecorder(tally), *interceptors(config, *keys)],
    )
    alongside_backend = SteppedBackend()
    backends = {
        "fake": ScriptedBackend("fake", words("one two three four five six")),
        "paced": ScriptedBackend("paced", words("a b c d e f g h i j k l", delay=0.02)),
        "alongside": alongside_backend,
    }
    process = psutil.Process()
    tracemalloc.start()
    began = time.monotonic()
    try:
        async with serving(CONFIG, backends) as served:  # type: ignore[arg-type]
            for batch in _batches(warmup):
                await asyncio.gather(*(run(served.channel, case, tally) for case in batch))
            await _pruned(served)
            baseline, rss_before = _traced(), process.memory_info().rss

            alongside = served.stub.Generate()
            await alongside.write(start(model="alongside-model"))
            events = [(await alongside.read()).event]
            for batch in _batches(main):
                await asyncio.gather(*(run(served.channel, case, tally) for case in batch))
                alongside_backend.step()
            alongside_backend.step(len(ALONGSIDE.split()))
            await alongside.done_writing()
            while (response := await alongside.read()) is not grpc.aio.EOF:
                events.append(response.event)

            await _pruned(served)
            after, rss_after = _traced(), process.memory_info().rss
    finally:
        tracemalloc.stop()
    report = {
        "cases": len(cases),
        "seconds": round(time.monotonic() - began, 1),
        "received": dict(sorted(tally.received.items())),
        "answered": dict(sorted(tally.answered.items())),
        "in_band": dict(sorted(tally.in_band.items())),
        "write_races": tally.write_races,
        "traced_bytes": {"baseline": baseline, "after": after, "growth": after - baseline},
        "rss_bytes": {"before": rss_before, "after": rss_after},
    }
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))

    assert tally.unexpected == []
    assert server_errors == []
    assert text(events) == ALONGSIDE
    assert events[-1].completed.finish_reason == ev_pb.FINISH_REASON_STOP
    assert after - baseline < MEMORY_TOLERANCE


def _batches(cases: list[Case]) -> Iterator[list[Case]]:
    for index in range(0, len(cases), CONCURRENCY):
        yield cases[index : index + CONCURRENCY]
