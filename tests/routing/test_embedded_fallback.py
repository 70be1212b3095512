"""The embedded model continues an HTTP target's answer after it failed mid-stream.

The route is [an OpenAI-compatible upstream on a loopback socket, the embedded
SmolLM2]. The upstream sends a few tokens of an answer and closes the
connection without its end marker; the router falls back to the embedded
model with the text so far as the start of the answer. What the embedded
model adds must be exactly its own greedy continuation of that prefix,
computed here with llama-cpp-python directly: the model's chat template
(from the GGUF metadata, rendered with jinja2), the prefix right after the
assistant header, greedy decoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2
import llama_cpp
import pytest
from llama_cpp import Llama
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import generation_pb2 as gen_pb

from llmrouter_server.backends.http_errors import ENDED_EARLY
from llmrouter_server.backends.llama_decode import bundled_model_path
from llmrouter_server.config import EMBEDDED_MODEL
from tests.helpers import Served, generate, kinds, loopback_config, serving, start, text

pytestmark = pytest.mark.timeout(30)

PROMPT = "Describe the sky on a clear day in one sentence."
PREFIX = [" The", " sky", " is"]
MAX_TOKENS = 12


@dataclass
class DroppingUpstream:
    """An OpenAI-compatible SSE server that sends ``tokens`` and then closes the
    connection without a finish reason or ``[DONE]``.

    Attributes:
        bodies: The JSON bodies received, in order.
    """

    tokens: Sequence[str]
    bodies: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> str:
        """Starts listening; returns the ``/v1`` base URL."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return f"http://127.0.0.1:{self.port}/v1"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(value)
                for name, _, value in (line.partition(":") for line in head.decode().split("\r\n"))
                if name.strip().lower() == "content-length"
            )
            self.bodies.append(json.loads(await reader.readexactly(length)))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n")
            for token in self.tokens:
                delta = json.dumps({"choices": [{"delta": {"content": token}}]})
                writer.write(f"data: {delta}\n\n".encode())
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def greedy_continuation(prompt: str, prefix: str, max_tokens: int) -> tuple[str, int]:
    """SmolLM2's greedy answer to ``prompt`` when its answer starts with ``prefix``:
    the text after the prefix and its token count (below ``max_tokens`` when the
    model ended by itself)."""
    llm = Llama(model_path=str(bundled_model_path()), n_ctx=2048, verbose=False)
    template = jinja2.Template(str(llm.metadata["tokenizer.chat_template"]))
    formatted = template.render(
        messages=[{"role": "user", "content": prompt}], add_generation_prompt=True
    )
    tokens = llm.tokenize((formatted + prefix).encode(), add_bos=False, special=True)
    produced: list[int] = []
    for token in llm.generate(tokens, temp=0.0, reset=True):
        if len(produced) == max_tokens or llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
            break
        produced.append(token)
    return llm.detokenize(produced).decode(), len(produced)


@pytest.fixture
async def served() -> AsyncIterator[tuple[Served, DroppingUpstream]]:
    upstream = DroppingUpstream(PREFIX)
    base_url = await upstream.start()
    config = loopback_config(
        backends={
            "remote": {"kind": "openai", "base_url": base_url, "api_key_env": None},
            "embedded": {"kind": "embedded"},
        },
        routes={
            "sky": {
                "on_mid_stream_failure": "continue",
                "targets": [
                    {"backend": "remote", "model": "remote-model"},
                    {"backend": "embedded", "model": EMBEDDED_MODEL},
                ],
            }
        },
        default_route="sky",
    )
    try:
        async with serving(config) as served:
            yield served, upstream
    finally:
        await upstream.stop()


async def test_the_embedded_fallback_continues_the_failed_answer_greedily(
    served: tuple[Served, DroppingUpstream],
) -> None:
    server, upstream = served
    prefix = "".join(PREFIX)
    expected, tokens = await asyncio.to_thread(
        greedy_continuation, PROMPT, prefix, MAX_TOKENS - len(PREFIX)
    )

    events = await generate(
        server.stub, start(PROMPT, model="sky", sampling={"max_tokens": MAX_TOKENS})
    )

    at = kinds(events).index("fallback_used")
    assert kinds(events)[: at + 1] == ["started", "chunk", "chunk", "chunk", "attempt_failed",
                                       "fallback_used"]  # fmt: skip
    assert text(events[:at]) == prefix
    assert text(events[at:]) == expected
    failed = events[at - 1].attempt_failed
    assert (failed.attempt, failed.target, failed.backend, failed.tokens, failed.will_retry) == (
        1, 0, "remote", 3, True
    )  # fmt: skip
    assert failed.reason == f"{ENDED_EARLY} after 3 tokens"
    used = events[at].fallback_used
    assert (used.from_backend, used.backend, used.to_model, used.to_target, used.action) == (
        "remote", "embedded", EMBEDDED_MODEL, 1, gen_pb.MID_STREAM_ACTION_CONTINUE
    )  # fmt: skip
    completed = events[-1].completed
    assert (completed.attempts, completed.model, completed.backend) == (
        2, EMBEDDED_MODEL, "embedded"
    )  # fmt: skip
    continued = sum(e.chunk.token_count for e in events[at:] if e.HasField("chunk"))
    assert (continued, completed.usage.completion_tokens) == (tokens, len(PREFIX) + tokens)
    ended = tokens < MAX_TOKENS - len(PREFIX)
    finish = ev_pb.FINISH_REASON_STOP if ended else ev_pb.FINISH_REASON_LENGTH
    assert completed.finish_reason == finish
    assert len(upstream.bodies) == 1
    assert upstream.bodies[0]["max_tokens"] == MAX_TOKENS
