"""RACE: the next target starts when the first token is late; the first token wins.

The run's current target starts at once. Each ``race_after`` seconds without
a first token, the next ready target of the round starts too (an attempt of
its own). The first contender to yield a delta wins; the others are closed
at once (slot and connection freed) and the winner goes on alone. A
contender that fails while others still run is reported and the race goes
on; when the last one fails, its failure is the run's.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

from llmrouter_server.backends.base import Delta
from llmrouter_server.errors import BackendError
from llmrouter_server.routing.items import AttemptStarted, RouteItem, Waiting
from llmrouter_server.routing.puller import Puller, close_all, wait_any
from llmrouter_server.routing.runner import Run


async def race(run: Run) -> AsyncGenerator[RouteItem, None]:
    """Races the run's targets for the first token; then streams the winner."""
    contenders: list[Puller] = []
    _launch(run, contenders, run.index, run.number)
    launched_at = time.monotonic()
    winner: Puller | None = None
    started: dict[Puller, AttemptStarted] = {}
    try:
        while winner is None:
            wait = _until_next_launch(run, launched_at)
            done = await wait_any(contenders, wait)
            if not done:
                _launch_next(run, contenders)
                launched_at = time.monotonic()
                continue
            for contender in done:
                item = _settle(run, contenders, contender, started)
                if isinstance(item, Delta):
                    winner = contender
                    await close_all(c for c in contenders if c is not winner)
                    contenders[:] = [winner]
                    run.index, run.number = winner.index, winner.number
                    if winner in started:
                        yield started[winner]
                    yield item
                    break
                if item is not None:
                    yield item
        async for rest in winner.items:
            yield rest
    finally:
        await close_all(contenders)


def _settle(
    run: Run, contenders: list[Puller], contender: Puller, started: dict[Puller, AttemptStarted]
) -> RouteItem | None:
    """What a finished pull means: a delta, an item to pass on, or a failure."""
    try:
        item = contender.pull.result()
    except StopAsyncIteration:
        return Delta()  # ended without text: it still answered first
    except BackendError as error:
        contenders.remove(contender)
        run.index, run.number = contender.index, contender.number
        if not contenders and not _launch_next(run, contenders):
            raise  # the last one: the run reports it and decides
        return run.failed(error, will_retry=True, delay=0.0)
    if isinstance(item, AttemptStarted):
        started[contender] = item
        contender.arm()
        return None
    if isinstance(item, Waiting):
        contender.arm()
        return item
    return item


def _until_next_launch(run: Run, launched_at: float) -> float | None:
    if not _can_launch(run):
        return None
    return max(run.plan.race_after - (time.monotonic() - launched_at), 0.0)


def _can_launch(run: Run) -> bool:
    return run.number < run.plan.max_attempts and run.has_next_in_round()


def _launch_next(run: Run, contenders: list[Puller]) -> bool:
    if not _can_launch(run):
        return False
    index = run.take_next_in_round()
    _launch(run, contenders, index, run.number + 1)
    run.number += 1
    return True


def _launch(run: Run, contenders: list[Puller], index: int, number: int) -> None:
    contender = Puller(index, number, run.attempt(index, number))
    contender.arm()
    contenders.append(contender)
