"""The scenarios of the fault matrix and what the FALLBACK policy should do in each.

A ``Case`` is one fault of backend ``a`` and how the router classifies it; a
``Scenario`` is one Generate call; ``expect`` is a small model of the
FALLBACK policy that computes the attempts the router should make.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import grpc
from llmrouter.v1 import generation_pb2 as gen_pb

from tests.routing.faults import (
    OK,
    Fault,
    drop_after,
    malformed_after,
    slow,
    stall_after,
    status,
)

TOKENS = 10
"""Tokens in a whole answer; three failing attempts of 3 tokens fit in it."""
MAX_ATTEMPTS = 3
TIMEOUT = 0.5
"""The route's first-token and idle timeouts, in seconds."""
MAX_BACKOFF = 0.05
RETRY_AFTER = 1.0
CLOCK_SLACK = 0.01
"""How far a reported delay may fall short of the Retry-After it honours, in seconds."""
MODELS = ("ma", "mb")
"""The model of target 0 (backend ``a``) and target 1 (backend ``b``)."""

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


@dataclass(frozen=True)
class Case:
    """One fault of backend ``a`` and how the router classifies it."""

    name: str
    """How the scenario id names it."""
    fault: Fault | None
    """What the upstream does; None: nothing listens (connection refused)."""
    error_reason: str = ""
    """The failure's class; empty when the fault is not a failure."""
    http_status: int = 0
    """The HTTP status of a status fault."""
    code: grpc.StatusCode = UNAVAILABLE
    """The call's status when this failure ends the route."""

    @property
    def fails(self) -> bool:
        return bool(self.error_reason)

    @property
    def retryable(self) -> bool:
        return self.code in (UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)

    @property
    def retry_after(self) -> float | None:
        return self.fault.retry_after if self.fault else None

    @property
    def after(self) -> int:
        """Tokens the upstream writes before the fault (per attempt)."""
        return self.fault.after if self.fault and self.fault.kind != "status" else 0

    def reason_ending(self, tokens: int) -> str:
        """How ``attempt_failed.reason`` ends for an attempt that produced ``tokens``."""
        if self.fault is not None and self.fault.kind == "stall":
            if tokens == 0:
                return f"no first token within {TIMEOUT:g} s"
            return f"no token for {TIMEOUT:g} s after token {tokens}"
        if not self.retryable:
            return f"HTTP {self.http_status}: scripted {self.http_status}"  # a refusal: no "when"
        return " before the first token" if tokens == 0 else f" after {tokens} tokens"


def _status(code: int, retry_after: float | None = None) -> Case:
    if retry_after:
        name = f"{code}-retry-after-{retry_after:g}s"
    elif code >= 500 or code == 429:
        name = f"{code}-before-first-token"
    else:
        name = f"{code}-not-retryable"
    if code == 429:
        grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    elif code >= 500:
        grpc_code = UNAVAILABLE
    elif code == 400:
        grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    else:
        grpc_code = grpc.StatusCode.FAILED_PRECONDITION
    return Case(name, status(code, retry_after), "BACKEND_STATUS", code, grpc_code)


def _when(tokens: int) -> str:
    return f"after-{tokens}-tokens" if tokens else "before-first-token"


def _drop(tokens: int) -> Case:
    return Case(f"drop-{_when(tokens)}", drop_after(tokens), "BACKEND_PROTOCOL")


def _stall(tokens: int) -> Case:
    return Case(f"stall-{_when(tokens)}", stall_after(tokens), "BACKEND_TIMEOUT")


def _malformed(tokens: int) -> Case:
    return Case(f"malformed-{_when(tokens)}", malformed_after(tokens), "BACKEND_PROTOCOL")


SUCCESS = Case("ok", OK)
REFUSED = Case("refused-connection", None, "BACKEND_CONNECT")
SLOW = Case("slow-tokens", slow(0.02))


_MID_STREAM_WORDS = {"continue": "", "restart": "restarting", "fail": "failing-mid-stream"}
"""How a scenario id names the route's ``on_mid_stream_failure`` (the default goes unsaid)."""


@dataclass(frozen=True)
class Scenario:
    """One Generate call against a faulty ``a`` (and maybe a fallback ``b``)."""

    dialect: str
    """``openai`` or ``anthropic``: the kind of both backends."""
    case: Case
    """What ``a`` does on its first request."""
    fallback: bool
    """True: the route is ``[a, b]``; False: ``[a]``."""
    then: Case | None = None
    """What ``a`` does on its later requests; None: the same as on the first."""
    on_mid_stream: str = "continue"
    """The route's ``on_mid_stream_failure``."""
    b_first: Case = SUCCESS
    """What ``b`` does on its first request (afterwards it answers)."""

    @property
    def id(self) -> str:
        parts = [self.dialect, self.case.name]
        if self.then is SUCCESS:
            parts.append("once")
        elif self.then is not None:
            parts.append(f"then-{self.then.name}")
        parts.append("with-fallback" if self.fallback else "without-fallback")
        if self.b_first.fails:
            parts.append(f"that-fails-once-with-{self.b_first.http_status}")
        parts.append(_MID_STREAM_WORDS[self.on_mid_stream])
        return "-".join(part for part in parts if part)

    @property
    def route(self) -> str:
        return "with-fallback" if self.fallback else "alone"

    @property
    def waits_for_retry_after(self) -> bool:
        """True when the scenario waits for Retry-After between attempts."""
        return not self.fallback and (self.case.retry_after or 0) > 0


@dataclass(frozen=True)
class Attempt:
    """One attempt the router should make."""

    number: int
    """Counting from 1."""
    target: int
    """Index in the route."""
    case: Case
    """What the target does on this request (``SUCCESS`` or a failure)."""
    skip: int
    """Tokens of the answer the request continues after (its assistant prefix)."""
    tokens: int
    """Tokens (chunks) it produces."""
    will_retry: bool = False
    """Another attempt follows."""
    delay: str = "none"
    """The wait before the next attempt: ``none``, ``backoff`` (0 < d <= max) or
    ``retry_after`` (the Retry-After of the only target)."""
    action: int = gen_pb.MID_STREAM_ACTION_CONTINUE
    """The action of the ``fallback_used`` that follows."""

    @property
    def model(self) -> str:
        return MODELS[self.target]

    @property
    def backend(self) -> str:
        return "ab"[self.target]


def expect(s: Scenario) -> list[Attempt]:
    """The attempts the FALLBACK policy makes in a scenario, in order."""
    scripts = [[s.case, s.then or s.case], [s.b_first, SUCCESS]]
    served = [0, 0]
    resting: set[int] = set()  # targets that asked for Retry-After
    attempts: list[Attempt] = []
    target, emitted = 0, 0
    for number in range(1, MAX_ATTEMPTS + 1):
        script = scripts[target]
        case = script[min(served[target], len(script) - 1)]
        served[target] += 1
        if not case.fails:
            attempts.append(Attempt(number, target, case, emitted, TOKENS - emitted))
            return attempts
        tokens = min(case.after, TOKENS - emitted)
        attempt = Attempt(number, target, case, emitted, tokens)
        emitted += tokens
        if case.retry_after is not None:
            resting.add(target)
        mid_stream = emitted > 0
        if (
            number == MAX_ATTEMPTS
            or not case.retryable
            or (mid_stream and s.on_mid_stream == "fail")
        ):
            attempts.append(attempt)
            return attempts
        target, delay = _next_target(target, 2 if s.fallback else 1, resting)
        action = gen_pb.MID_STREAM_ACTION_CONTINUE
        if mid_stream and s.on_mid_stream == "restart":
            action, emitted = gen_pb.MID_STREAM_ACTION_RESTART, 0
        attempts.append(replace(attempt, will_retry=True, delay=delay, action=action))
    raise AssertionError("unreachable")


def _next_target(failed: int, count: int, resting: set[int]) -> tuple[int, str]:
    """The next target in order, at once; after the last, the first again after a wait.
    A resting target is skipped while another one is available."""
    later = [t for t in range(failed + 1, count) if t not in resting]
    if later:
        return later[0], "none"
    awake = [t for t in range(count) if t not in resting]
    return (awake[0], "backoff") if awake else (0, "retry_after")


SCENARIOS = [
    scenario
    for dialect in ("openai", "anthropic")
    for scenario in [
        Scenario(dialect, _status(500), fallback=True),
        Scenario(dialect, _status(503), fallback=False),
        Scenario(dialect, _status(503), fallback=False, then=SUCCESS),
        Scenario(dialect, _status(429, RETRY_AFTER), fallback=True),
        Scenario(dialect, _status(429, RETRY_AFTER), fallback=False),
        Scenario(dialect, _drop(3), fallback=True),
        Scenario(dialect, _drop(3), fallback=False),
        Scenario(dialect, _drop(3), fallback=False, then=SUCCESS),
        Scenario(dialect, _drop(3), fallback=True, on_mid_stream="restart"),
        Scenario(dialect, _drop(3), fallback=True, on_mid_stream="fail"),
        Scenario(dialect, _drop(0), fallback=True),
        Scenario(dialect, _stall(3), fallback=True),
        Scenario(dialect, _stall(3), fallback=False),
        Scenario(dialect, _stall(0), fallback=True),
        Scenario(dialect, _stall(0), fallback=False),
        Scenario(dialect, _malformed(3), fallback=True),
        Scenario(dialect, _malformed(0), fallback=False),
        Scenario(dialect, REFUSED, fallback=True),
        Scenario(dialect, REFUSED, fallback=False),
        Scenario(dialect, SLOW, fallback=True),
        Scenario(dialect, SLOW, fallback=False),
    ]
] + [
    Scenario("openai", _status(400), fallback=True),
    Scenario("anthropic", _status(401), fallback=True),
    Scenario("openai", _status(503), fallback=True, on_mid_stream="fail"),
    Scenario("openai", _status(429, RETRY_AFTER), fallback=True, b_first=_status(503)),
    Scenario("anthropic", _malformed(3), fallback=True, on_mid_stream="restart"),
    Scenario("openai", _status(503, RETRY_AFTER), fallback=False),
    Scenario("anthropic", _status(503, RETRY_AFTER), fallback=False, then=SUCCESS),
    Scenario("openai", _status(429), fallback=False),
    Scenario("anthropic", _status(429), fallback=False, then=_status(500)),
]
