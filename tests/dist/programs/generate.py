"""Streams one greedy generation through the installed Python client.

Usage: ``python generate.py ADDRESS PROMPT MAX_TOKENS``. Prints a line per event:
``chunk`` and the text as JSON, ``completed`` with the finish reason's number and the
completion tokens, or the name of any other kind.
"""

from __future__ import annotations

import asyncio
import json
import sys

from llmrouter import Client


async def main(address: str, prompt: str, max_tokens: int) -> None:
    async with Client(address) as client:
        sampling = {"max_tokens": max_tokens, "temperature": 0.0}
        async for event in client.generate(prompt, sampling=sampling):
            kind = event.WhichOneof("kind")
            if kind == "chunk":
                print("chunk", json.dumps(event.chunk.text))
            elif kind == "completed":
                completed = event.completed
                print("completed", completed.finish_reason, completed.usage.completion_tokens)
            else:
                print(kind)


if __name__ == "__main__":
    address, prompt, max_tokens = sys.argv[1:]
    asyncio.run(main(address, prompt, int(max_tokens)))
