"""The fault matrix: every upstream fault, in both dialects, through the real server.

Each scenario runs one Generate call on a route of real ``openai`` or
``anthropic`` backends pointed at ``FaultUpstream`` servers: ``a`` has the
fault, ``b`` is healthy. The route is ``[a, b]`` when a fallback target is
available and ``[a]`` when not. What the router should do is computed from the
scenario (fault, tokens before it, fallback, mid-stream action) by ``expect``,
a small model of the FALLBACK policy; the test then checks the events, their
order and offsets, the exact text, usage, the final status and its details,
the requests each upstream received and that every connection was closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from llmrouter.v1 import events_pb2 as ev_pb

from tests.helpers import Served, error_info, kinds, loopback_config, serving, start, text
from tests.routing.fault_cases import (
    CLOCK_SLACK,
    MAX_ATTEMPTS,
    MAX_BACKOFF,
    MODELS,
    RETRY_AFTER,
    SCENARIOS,
    TIMEOUT,
    TOKENS,
    Attempt,
    Scenario,
    expect,
)
from tests.routing.fault_dialects import PROMPT_TOKENS
from tests.routing.faults import OK, FaultUpstream, closed_port_url


def _param(s: Scenario) -> Any:
    return pytest.param(s, id=s.id, marks=pytest.mark.timeout(15 if s.waits_for_retry_after else 5))


@pytest.mark.parametrize("scenario", [_param(s) for s in SCENARIOS])
async def test_fault(scenario: Scenario) -> None:
    attempts = expect(scenario)
    async with _upstreams(scenario) as (a, b), serving(_config(scenario, a, b)) as served:
        events, error = await _generate(served, scenario)
        for upstream in (a, b):
            await upstream.wait_idle()

    _assert_offsets(events)
    assert kinds(events) == _expected_kinds(attempts)
    _assert_started(events[0], scenario)
    _assert_attempts(events, attempts)
    assert text(events) == "".join(_words(a.skip, a.tokens) for a in attempts)
    if attempts[-1].case.fails:
        _assert_route_failed(error, events, attempts)
    else:
        assert error is None
        _assert_completed(events[-1].completed, attempts)
    _assert_requests(a, b, attempts, scenario)


@asynccontextmanager
async def _upstreams(s: Scenario) -> AsyncIterator[tuple[FaultUpstream, FaultUpstream]]:
    a_script = [s.case.fault or OK, (s.then or s.case).fault or OK]
    a = FaultUpstream(TOKENS, a_script)
    b = FaultUpstream(TOKENS, [s.b_first.fault or OK, OK])
    async with AsyncExitStack() as stack:
        for upstream in (a, b):
            await upstream.start()
            stack.push_async_callback(upstream.stop)
        yield a, b


def _config(s: Scenario, a: FaultUpstream, b: FaultUpstream) -> Any:
    a_url = a.base_url if s.case.fault is not None else closed_port_url()
    settings = {
        "policy": "fallback",
        "max_attempts": MAX_ATTEMPTS,
        "retry": {
            "initial_backoff_seconds": 0.01,
            "max_backoff_seconds": MAX_BACKOFF,
            "multiplier": 2,
        },
        "first_token_timeout_seconds": TIMEOUT,
        "idle_timeout_seconds": TIMEOUT,
        "on_mid_stream_failure": s.on_mid_stream,
    }
    target_a = {"backend": "a", "model": MODELS[0]}
    target_b = {"backend": "b", "model": MODELS[1]}
    return loopback_config(
        backends={
            "a": {"kind": s.dialect, "base_url": a_url, "api_key_env": None},
            "b": {"kind": s.dialect, "base_url": b.base_url, "api_key_env": None},
        },
        routes={
            "with-fallback": {**settings, "targets": [target_a, target_b]},
            "alone": {**settings, "targets": [target_a]},
        },
        default_route="alone",
    )


async def _generate(served: Served, s: Scenario) -> tuple[list[Any], grpc.aio.AioRpcError | None]:
    """Runs the call; returns its events and the error it ended with, if any."""
    call: Any = served.stub.Generate(iter([start(model=s.route)]))
    events: list[Any] = []
    try:
        while (response := await call.read()) is not grpc.aio.EOF:
            events.append(response.event)
    except grpc.aio.AioRpcError as error:
        return events, error
    return events, None


def _words(first: int, count: int) -> str:
    return "".join(f" t{index}" for index in range(first, first + count))


def _expected_kinds(attempts: list[Attempt]) -> list[str]:
    expected = ["started"]
    for attempt in attempts:
        expected += ["chunk"] * attempt.tokens
        if attempt.case.fails:
            expected.append("attempt_failed")
        if attempt.will_retry:
            expected.append("fallback_used")
    if not attempts[-1].case.fails:
        expected.append("completed")
    return expected


def _assert_offsets(events: list[Any]) -> None:
    assert [event.offset for event in events] == list(range(len(events)))
    assert len({event.stream_id for event in events}) == 1


def _assert_started(event: Any, s: Scenario) -> None:
    assert (event.started.route, event.started.model, event.started.backend) == (
        s.route, MODELS[0], "a"
    )  # fmt: skip


def _assert_attempts(events: list[Any], attempts: list[Attempt]) -> None:
    """Each failure's notice, the fallback after it, and the text of each attempt."""
    position = 1
    for index, attempt in enumerate(attempts):
        chunks = events[position : position + attempt.tokens]
        assert "".join(e.chunk.text for e in chunks) == _words(attempt.skip, attempt.tokens)
        position += attempt.tokens
        if attempt.case.fails:
            _assert_failed(events[position].attempt_failed, attempt)
            position += 1
        if attempt.will_retry:
            _assert_fallback(events[position].fallback_used, attempt, attempts[index + 1])
            position += 1


def _assert_failed(failed: Any, attempt: Attempt) -> None:
    case = attempt.case
    assert (failed.attempt, failed.target, failed.model, failed.backend) == (
        attempt.number, attempt.target, attempt.model, attempt.backend
    )  # fmt: skip
    assert (failed.error_reason, failed.http_status, failed.tokens) == (
        case.error_reason, case.http_status, attempt.tokens
    )  # fmt: skip
    assert failed.reason.endswith(case.reason_ending(attempt.tokens)), failed.reason
    if case.http_status:
        assert str(case.http_status) in failed.reason
    assert failed.will_retry == attempt.will_retry
    delay = failed.retry_delay.ToTimedelta().total_seconds()
    if attempt.delay == "none":
        assert delay == 0
    elif attempt.delay == "backoff":
        assert 0 < delay <= MAX_BACKOFF
    else:
        # The delay left when the event is written, a hair under the Retry-After
        # the backend gave; _assert_requests checks the wait itself.
        assert RETRY_AFTER - CLOCK_SLACK <= delay <= RETRY_AFTER + MAX_BACKOFF


def _assert_fallback(fallback: Any, failed: Attempt, following: Attempt) -> None:
    assert (fallback.from_model, fallback.from_backend) == (failed.model, failed.backend)
    assert (fallback.to_model, fallback.backend, fallback.to_target) == (
        following.model, following.backend, following.target
    )  # fmt: skip
    assert fallback.action == failed.action


def _assert_completed(completed: Any, attempts: list[Attempt]) -> None:
    last = attempts[-1]
    assert completed.finish_reason == ev_pb.FINISH_REASON_STOP
    assert (completed.attempts, completed.model, completed.backend) == (
        len(attempts), last.model, last.backend
    )  # fmt: skip
    per_attempt = [
        (u.attempt, u.target, u.model, u.backend, u.usage.completion_tokens)
        for u in completed.attempt_usage
    ]
    assert per_attempt == [
        (a.number, a.target, a.model, a.backend, a.tokens) for a in attempts
    ]  # fmt: skip
    assert completed.attempt_usage[-1].usage.prompt_tokens == PROMPT_TOKENS
    for field in ("prompt_tokens", "completion_tokens", "total_tokens"):
        total = sum(getattr(u.usage, field) for u in completed.attempt_usage)
        assert getattr(completed.usage, field) == total, field
    assert completed.usage.completion_tokens == sum(a.tokens for a in attempts)


def _assert_route_failed(
    error: grpc.aio.AioRpcError | None, events: list[Any], attempts: list[Attempt]
) -> None:
    """The status of a failed route: code, ErrorInfo, RouteFailure and RetryInfo."""
    assert error is not None, "the call should have failed"
    failures = [a.case for a in attempts]
    if all(case.http_status == 429 for case in failures):
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    else:
        assert error.code() == failures[-1].code
    info = error_info(error)
    assert info.domain == "llmrouter.v1"
    assert info.reason == failures[-1].error_reason
    assert dict(info.metadata) == {
        "stream_id": events[0].stream_id,
        "offset": str(len(events)),
        "backend": attempts[-1].backend,
        "attempts": str(len(attempts)),
    }
    listed = _detail(error, ev_pb.RouteFailure)
    assert listed is not None, "no RouteFailure in the status details"
    notices = [e.attempt_failed for e in events if e.HasField("attempt_failed")]
    assert list(listed.attempts) == notices
    retry = _detail(error, error_details_pb2.RetryInfo)
    if any(case.retry_after is not None for case in failures):
        assert retry is not None, "no RetryInfo in the status details"
        assert retry.retry_delay.ToTimedelta().total_seconds() == RETRY_AFTER
    else:
        assert retry is None


def _detail(error: grpc.aio.AioRpcError, message_type: Any) -> Any:
    status_ = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert isinstance(status_, status_pb2.Status)
    for detail in status_.details:
        if detail.Is(message_type.DESCRIPTOR):
            message = message_type()
            detail.Unpack(message)
            return message
    return None


def _assert_requests(
    a: FaultUpstream, b: FaultUpstream, attempts: list[Attempt], s: Scenario
) -> None:
    """Each attempt asked its target's upstream for its model, continuing after
    exactly the text so far; every connection was closed."""
    for target, upstream in enumerate((a, b)):
        mine = [attempt for attempt in attempts if attempt.target == target]
        if target == 0 and s.case.fault is None:
            assert upstream.accepted == 0
            continue
        assert [r.body.get("model") for r in upstream.requests] == [MODELS[target]] * len(mine)
        assert [r.continuation for r in upstream.requests] == [
            _words(0, attempt.skip) for attempt in mine
        ]
        assert upstream.accepted == len(mine)
        assert upstream.open_connections == 0
        later = upstream.requests[1:]
        for attempt, before, after in zip(mine, upstream.requests, later, strict=False):
            if attempt.delay == "retry_after":
                assert after.time - before.time >= RETRY_AFTER
