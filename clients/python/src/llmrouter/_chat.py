"""ChatSession: a conversation that keeps its message history and settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import generation_pb2 as gen_pb

if TYPE_CHECKING:
    from ._client import Client
    from ._generation import Generation, Result


class ChatSession:
    """A conversation sent whole on every turn, with the same model, sampling and stops.

    A turn joins the history when its reply completes; a failed or cancelled
    reply leaves the history unchanged. A session runs one turn at a time.
    """

    def __init__(
        self,
        client: Client,
        *,
        system: str = "",
        model: str = "",
        stop: Sequence[str] = (),
        sampling: Mapping[str, Any] | None = None,
    ) -> None:
        self._client = client
        self._settings: dict[str, Any] = {"model": model, "stop": list(stop)}
        if sampling is not None:
            self._settings["sampling"] = dict(sampling)
        self._messages: list[gen_pb.ChatMessage] = []
        if system:
            self._messages.append(gen_pb.ChatMessage(role=gen_pb.CHAT_ROLE_SYSTEM, content=system))

    @property
    def messages(self) -> list[gen_pb.ChatMessage]:
        """A copy of the history, oldest first."""
        return list(self._messages)

    def send(self, text: str) -> Generation:
        """Starts the reply to ``text``; iterate the generation to stream it."""
        turn = gen_pb.ChatMessage(role=gen_pb.CHAT_ROLE_USER, content=text)
        start = gen_pb.StartGeneration(messages=[*self._messages, turn], **self._settings)
        generation = self._client.generate(start)

        def join(result: Result) -> None:
            if result.completed.finish_reason != ev_pb.FINISH_REASON_CANCELLED:
                reply = gen_pb.ChatMessage(role=gen_pb.CHAT_ROLE_ASSISTANT, content=result.text)
                self._messages += [turn, reply]

        generation.on_completed = join
        return generation

    async def ask(self, text: str) -> str:
        """Sends ``text`` and returns the whole reply."""
        return (await self.send(text).result()).text
