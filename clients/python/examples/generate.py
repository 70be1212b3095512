"""Streams one generation from an llmrouter server, then holds a two-turn chat.

Run it as ``python examples/generate.py localhost:50051 "Say hello in five words."``.
"""

from __future__ import annotations

import asyncio
import sys

from llmrouter import Client, RouterError
from llmrouter.v1 import events_pb2 as ev_pb

SAMPLING = {"max_tokens": 40, "temperature": 0.0}


async def main(address: str, prompt: str) -> int:
    async with Client(address) as client:
        try:
            generation = client.generate(prompt, sampling=SAMPLING)
            async for text in generation.chunks():
                print(text, end="", flush=True)
            completed = generation.completed
            assert completed is not None
            reason = ev_pb.FinishReason.Name(completed.finish_reason)
            print(f"\n[{reason}, {completed.usage.completion_tokens} tokens]")

            chat = client.chat(system="Answer in one short sentence.", sampling=SAMPLING)
            for question in ("What is a lighthouse?", "Who keeps it?"):
                print(f"> {question}\n{await chat.ask(question)}")
        except RouterError as error:
            print(f"{error} (field {error.field!r}, reason {error.reason!r})", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    arguments = sys.argv[1:]
    address = arguments[0] if arguments else "localhost:50051"
    prompt = arguments[1] if len(arguments) > 1 else "Say hello in five words."
    sys.exit(asyncio.run(main(address, prompt)))
