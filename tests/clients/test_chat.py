"""The Python client's chat session against ``llmrouter serve``."""

from __future__ import annotations

import pytest
from llmrouter import Client, RouterError
from llmrouter.v1 import generation_pb2 as gen_pb

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


async def test_chat_keeps_the_history_and_the_stop_sequences(client: Client) -> None:
    chat = client.chat(
        system="You are a terse assistant.",
        stop=["."],
        sampling={"max_tokens": 8, "temperature": 0.0},
    )

    first = await chat.ask("Name a colour.")
    second = await chat.ask("Name another one.")

    assert first
    assert second
    assert "." not in first + second
    assert [(message.role, message.content) for message in chat.messages] == [
        (gen_pb.CHAT_ROLE_SYSTEM, "You are a terse assistant."),
        (gen_pb.CHAT_ROLE_USER, "Name a colour."),
        (gen_pb.CHAT_ROLE_ASSISTANT, first),
        (gen_pb.CHAT_ROLE_USER, "Name another one."),
        (gen_pb.CHAT_ROLE_ASSISTANT, second),
    ]


async def test_chat_leaves_the_history_unchanged_when_a_reply_fails(client: Client) -> None:
    chat = client.chat(model="gpt-17")

    with pytest.raises(RouterError):
        await chat.ask("Hello?")

    assert chat.messages == []
