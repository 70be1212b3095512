"""The Python client against ``llmrouter serve``: generation, cancel and errors."""

from __future__ import annotations

import grpc
import pytest
from llmrouter import Client, RouterError
from llmrouter.v1 import events_pb2 as ev_pb

from tests.helpers import PROMPT, kinds, text

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

GREEDY = {"temperature": 0.0, "max_tokens": 8}


async def test_events_arrive_in_offset_order_and_complete_with_length(client: Client) -> None:
    generation = client.generate(PROMPT, sampling=GREEDY)

    events = [event async for event in generation]

    assert kinds(events)[0] == "started"
    assert set(kinds(events)[1:-1]) == {"chunk"}
    assert [event.offset for event in events] == list(range(len(events)))
    assert {event.stream_id for event in events} == {generation.stream_id}
    assert generation.text
    assert generation.text == text(events)
    completed = events[-1].completed
    assert completed.finish_reason == ev_pb.FINISH_REASON_LENGTH
    assert completed.usage.completion_tokens == 8
    assert generation.completed == completed


async def test_chunks_and_result_give_the_same_text(client: Client) -> None:
    chunks = [chunk async for chunk in client.generate(PROMPT, sampling=GREEDY).chunks()]
    result = await client.generate(PROMPT, sampling=GREEDY).result()

    assert chunks
    assert "".join(chunks) == result.text
    assert result.completed.finish_reason == ev_pb.FINISH_REASON_LENGTH


async def test_cancel_completes_with_cancelled(client: Client) -> None:
    generation = client.generate("Write a long story about the sea.", sampling={"max_tokens": 256})

    async for event in generation:
        if event.HasField("chunk"):
            await generation.cancel("enough")

    assert generation.completed is not None
    assert generation.completed.finish_reason == ev_pb.FINISH_REASON_CANCELLED
    assert generation.completed.cancelled_by == ev_pb.CANCELLED_BY_CALLER
    assert generation.completed.cancel_reason == "enough"
    assert generation.completed.usage.completion_tokens < 256


async def test_unknown_model_raises_not_found_naming_the_field(client: Client) -> None:
    with pytest.raises(RouterError) as raised:
        await client.generate("hi", model="gpt-17").result()

    error = raised.value
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert error.field == "start.model"
    assert error.reason == "NOT_FOUND"
    assert error.error_info.domain == "llmrouter.v1"
    assert "unknown model 'gpt-17'" in error.message
    assert isinstance(error.__cause__, grpc.aio.AioRpcError)


async def test_zero_max_tokens_raises_invalid_argument_with_a_violation(client: Client) -> None:
    with pytest.raises(RouterError) as raised:
        await client.generate("hi", sampling={"max_tokens": 0}).result()

    error = raised.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    violations = [violation.field for violation in error.bad_request.field_violations]
    assert violations == ["start.sampling.max_tokens"]
    assert error.field == "start.sampling.max_tokens"
    assert error.retry_delay is None


async def test_list_models_has_the_default_route(client: Client) -> None:
    routes = await client.list_models()

    assert [(route.name, route.is_default) for route in routes] == [("smollm2-135m-instruct", True)]


async def test_get_stats_reports_every_route(client: Client) -> None:
    report = await client.get_stats()

    assert report.window.seconds == 300
    assert [row.model for row in report.per_model] == ["smollm2-135m-instruct"]
    assert report.total.model == ""


async def test_get_stats_of_an_unknown_model_raises_not_found(client: Client) -> None:
    with pytest.raises(RouterError) as raised:
        await client.get_stats("gpt-17")

    assert raised.value.code == grpc.StatusCode.NOT_FOUND
    assert raised.value.error_info.domain == "llmrouter.v1"
