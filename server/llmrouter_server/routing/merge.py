"""MERGE: every target at once, their deltas interleaved and tagged by target.

Each target is one lane (and one attempt): a lane has at most one pull in
flight, so a slow consumer slows every lane. A lane that fails is reported
and ends; the others go on. The generation fails only when every lane
failed. After a release, each unfinished lane continues after its own text.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from llmrouter_server.backends.base import Delta
from llmrouter_server.errors import BackendError
from llmrouter_server.routing.items import RouteItem, Tagged
from llmrouter_server.routing.puller import Puller, close_all, wait_any
from llmrouter_server.routing.runner import Run


async def merge(run: Run) -> AsyncGenerator[RouteItem, None]:
    """Streams every target's deltas as they come, each tagged with its target.

    Raises:
        RouteFailed: Every lane failed.
    """
    transcript = run.transcript
    lanes = [
        Puller(index, index + 1, run.attempt(index, index + 1, lane=index))
        for index in range(len(run.route.targets))
        if not transcript.ended(index)
    ]
    for lane in lanes:
        lane.arm()
    running = list(lanes)
    try:
        while running:
            for lane in await wait_any(running):
                item = _settle(run, running, lane)
                if item is not None:
                    yield item
        if not any(transcript.finished(index) for index in range(len(run.route.targets))):
            raise run.route_failed()
    finally:
        await close_all(lanes)


def _settle(run: Run, running: list[Puller], lane: Puller) -> RouteItem | None:
    try:
        item = lane.pull.result()
    except StopAsyncIteration:
        running.remove(lane)
        return None
    except BackendError as error:
        running.remove(lane)
        run.index, run.number = lane.index, lane.number
        return run.failed(error, will_retry=False, delay=0.0, lane=lane.index)
    lane.arm()
    if isinstance(item, Delta):
        run.transcript.extend(item, lane=lane.index)
        target = run.route.targets[lane.index]
        return Tagged(item, target, lane.index, lane.number)
    return item
