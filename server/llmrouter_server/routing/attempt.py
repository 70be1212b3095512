"""One attempt: a slot on the target, one backend stream, its deadlines.

The first-token timeout counts only the time spent waiting on the backend
(a generation paused by its caller does not run it down); the idle timeout
is the longest silence between two deltas. Either ends the attempt as a
stall, which frees the slot and the connection at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import replace

from llmrouter_server.backends.base import BackendRequest, Delta
from llmrouter_server.errors import BackendError, BackendStalled
from llmrouter_server.routing.items import AttemptStarted, Waiting
from llmrouter_server.routing.route import Plan, Target
from llmrouter_server.routing.transcript import Segment, Transcript
from llmrouter_server.routing.watchdog import Watchdog
from llmrouter_server.values import FinishReason

logger = logging.getLogger(__name__)

AttemptItem = Waiting | AttemptStarted | Delta
"""What an attempt yields."""


async def attempt(  # noqa: PLR0913 - one attempt needs all of these
    target: Target,
    index: int,
    number: int,
    request: BackendRequest,
    plan: Plan,
    transcript: Transcript,
    *,
    lane: int = 0,
    stream_id: str = "",
    checked: bool = True,
) -> AsyncGenerator[AttemptItem, None]:
    """Runs attempt ``number`` on ``target``, continuing the transcript's text.

    Yields ``Waiting`` while queued for a slot, ``AttemptStarted``, then the
    backend's deltas, each counted in the attempt's segment (the consumer
    adds the ones it passes on to the transcript's text). The target's health
    learns the outcome: a retryable failure, a success (the stream ended, or
    was closed after producing text), or nothing (closed before any text, or
    a refusal of this particular request).

    With ``checked``, the attempt joins the target's queue only within its
    bound and the plan's share of it (``Slots``); a refusal is not the
    backend's failure, and its circuit does not hear of it.

    Raises:
        BackendError: The attempt failed.
        ResourceExhausted: ``checked`` and the target's queue has no place for it.
    """
    if not target.health.claim():
        # Another generation's probe decides this half-open circuit first.
        raise BackendError(target.backend.name, "skipped: its circuit is open", retryable=True)
    try:
        async with aclosing(target.slots.acquire(plan.queue, checked=checked)) as positions:
            async for position in positions:
                yield Waiting(position)
    except BaseException:
        target.health.abandoned()
        raise
    segment = transcript.begin(Segment(number, index, target.model, target.backend.name))
    try:
        yield AttemptStarted(target, index, number)
        room = request.max_tokens - transcript.tokens(lane)
        if room <= 0:
            yield Delta(finish_reason=FinishReason.LENGTH)
            return
        asked = replace(
            request, model=target.model, max_tokens=room, continuation=transcript.text(lane)
        )
        async with aclosing(target.backend.stream(asked)) as deltas:
            async for delta in timed(deltas, plan, target.backend.name):
                segment.add(delta)
                yield delta
    except BackendError as error:
        # A refusal of this request (a 4xx, a prompt too long) says nothing
        # about the target's health: only retryable failures count.
        outcome = (
            functools.partial(target.health.failed, error.retry_after)
            if error.retryable
            else target.health.abandoned
        )
        _judge(target, stream_id, outcome)
        raise
    except BaseException:
        # Closed by the consumer (released, cancelled, stopped) or by a race.
        outcome = target.health.succeeded if segment.tokens else target.health.abandoned
        _judge(target, stream_id, outcome)
        raise
    else:
        _judge(target, stream_id, target.health.succeeded)
    finally:
        target.slots.release()


async def timed(
    deltas: AsyncIterator[Delta], plan: Plan, backend: str
) -> AsyncGenerator[Delta, None]:
    """Passes deltas on, failing with ``BackendStalled`` when the backend is too slow."""
    tokens = 0
    waited = 0.0
    watchdog = Watchdog()
    try:
        while True:
            limit = plan.idle_timeout if tokens else _left(plan.first_token_timeout, waited)
            began = time.monotonic()
            watchdog.arm(limit)
            try:
                delta = await anext(deltas)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if not watchdog.expired():
                    raise
                if tokens:
                    detail = f"no token for {plan.idle_timeout:g} s after token {tokens}"
                else:
                    detail = f"no first token within {plan.first_token_timeout:g} s"
                raise BackendStalled(backend, detail) from None
            finally:
                watchdog.disarm()
            if not tokens:
                waited += time.monotonic() - began
            tokens += delta.token_count
            yield delta
            if delta.finish_reason is not None:
                return
    finally:
        watchdog.close()


def _left(limit: float | None, waited: float) -> float | None:
    return None if limit is None else max(limit - waited, 0.0)


def _judge(target: Target, stream_id: str, outcome: Callable[[], None]) -> None:
    before = target.health.state
    outcome()
    after = target.health.state
    if after is not before:
        logger.warning(
            "stream %s: circuit of %s is now %s (was %s; %d failures in a row)",
            stream_id, target.name, after, before, target.health.failures,
            extra={
                "stream_id": stream_id, "model": target.model, "target": target.name,
                "circuit": str(after),
            },
        )  # fmt: skip
