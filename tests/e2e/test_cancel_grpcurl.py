"""End to end: grpcurl cancels a generation that CREDIT flow holds.

``grpcurl -d @`` reads the Generate requests from its stdin as they come: a
``start`` with two credits, then, once both events are printed, a ``cancel``.
The call must print the two events and the ``completed`` event (which needs no
credit) and exit 0 at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.grpcurl import GRPCURL
from tests.serve_process import llmrouter_serve

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

START = {
    "start": {
        "prompt": "Write a long story about a lighthouse keeper who talks to the sea every night.",
        "sampling": {"maxTokens": 200},
        "flow": {"mode": "FLOW_MODE_CREDIT", "initialCredits": 2},
    }
}
CANCEL = {"cancel": {"reason": "grpcurl test"}}


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    """``llmrouter serve`` on a loopback port, as ``make serve`` runs it."""
    with llmrouter_serve() as address:
        yield address


class Messages:
    """The JSON messages grpcurl prints, one after another, read as they come."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self._stream = stream
        self._text = ""
        self._decoder = json.JSONDecoder()

    async def next(self) -> dict[str, Any]:
        """The next message; fails if the output ends first."""
        while True:
            text = self._text.lstrip()
            try:
                message, end = self._decoder.raw_decode(text)
            except json.JSONDecodeError:
                chunk = await self._stream.read(4096)
                assert chunk, f"grpcurl's output ended in {self._text!r}"
                self._text += chunk.decode()
                continue
            self._text = text[end:]
            assert isinstance(message, dict)
            return message

    async def rest(self) -> list[dict[str, Any]]:
        """Every remaining message, until the output ends."""
        self._text += (await self._stream.read()).decode()
        messages = []
        while self._text.strip():
            messages.append(await self.next())
        return messages


async def test_grpcurl_cancel_ends_a_call_out_of_credits_with_completed(address: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *[GRPCURL, "-plaintext", "-d", "@", address, "llmrouter.v1.RouterService/Generate"],
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        process.stdin.write(json.dumps(START).encode() + b"\n")
        await process.stdin.drain()
        output = Messages(process.stdout)
        async with asyncio.timeout(60):
            events = [(await output.next())["event"] for _ in range(2)]

        process.stdin.write(json.dumps(CANCEL).encode() + b"\n")
        process.stdin.close()
        async with asyncio.timeout(5):
            events += [message["event"] for message in await output.rest()]
            stderr = (await process.stderr.read()).decode()
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert code == 0, stderr
    kinds = [_kind(event) for event in events]
    assert (len(kinds), kinds[0], kinds[-1]) == (3, "started", "completed"), kinds
    assert int(events[1].get("offset", 0)) == 1
    completed = events[-1]["completed"]
    assert completed["finishReason"] == "FINISH_REASON_CANCELLED"
    assert completed["cancelledBy"] == "CANCELLED_BY_CALLER"
    assert completed["cancelReason"] == "grpcurl test"
    assert int(completed["usage"]["promptTokens"]) > 0


def _kind(event: dict[str, Any]) -> str:
    """The kind of a StreamEvent as grpcurl prints it, such as ``chunk``."""
    [kind] = event.keys() - {"streamId", "offset", "time"}
    return str(kind)
