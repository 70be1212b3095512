"""Helpers for the client tests: requests, readers and checks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

from llmrouter import Client, Generation, RouterError
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import service_pb2 as svc_pb

from tests.helpers import PROMPT

T = TypeVar("T")


def greedy(max_tokens: int) -> dict[str, Any]:
    """Sampling for ``max_tokens`` tokens at temperature 0."""
    return {"max_tokens": max_tokens, "temperature": 0.0}


def credit(initial: int) -> dict[str, Any]:
    """CREDIT flow with ``initial`` credits up front."""
    return {"mode": "FLOW_MODE_CREDIT", "initial_credits": initial}


async def reference_text(client: Client, max_tokens: int) -> str:
    """The whole text of an uninterrupted greedy generation of the test prompt."""
    return (await client.generate(PROMPT, sampling=greedy(max_tokens)).result()).text


async def take(items: AsyncIterator[T], count: int) -> list[T]:
    """The next ``count`` items."""
    return [await anext(items) for _ in range(count)]


async def rest(items: AsyncIterator[T]) -> list[T]:
    """Every item until the end."""
    return [item async for item in items]


async def until(events: AsyncIterator[ev_pb.StreamEvent], kind: str) -> list[ev_pb.StreamEvent]:
    """The events up to and including the first of ``kind``."""
    taken = []
    while not taken or taken[-1].WhichOneof("kind") != kind:
        taken.append(await anext(events))
    return taken


async def until_failure(
    events: AsyncIterator[ev_pb.StreamEvent],
) -> tuple[list[ev_pb.StreamEvent], RouterError]:
    """The events up to the error the iteration fails with, and that error."""
    taken: list[ev_pb.StreamEvent] = []
    try:
        while True:
            taken.append(await anext(events))
    except RouterError as error:
        return taken, error


def offsets(events: list[ev_pb.StreamEvent]) -> list[int]:
    """The offsets of some events."""
    return [event.offset for event in events]


def events_of(items: list[svc_pb.SubscribeResponse]) -> list[ev_pb.StreamEvent]:
    """The events among subscription items."""
    return [item.event for item in items if item.HasField("event")]


async def subscribe_all(client: Client, *stream_ids: str) -> list[svc_pb.SubscribeResponse]:
    """Subscribes to ``stream_ids`` from offset 0, half-closes, returns every item."""
    async with client.subscribe() as subscription:
        for stream_id in stream_ids:
            await subscription.add(stream_id)
        await subscription.close_send()
        return [item async for item in subscription]


async def collect(generation: Generation) -> list[ev_pb.StreamEvent]:
    """Every event of a generation."""
    return [event async for event in generation]
