"""An OpenAI-compatible streaming upstream for the benchmarks, in its own process.

``POST /v1/chat/completions`` answers with ``max_tokens`` chat completion
chunks shaped like OpenAI's (``id``, ``object``, ``created``, ``model``,
``choices``), token ``i`` being the text `` t{i}``, then a finish chunk, a
usage chunk and ``data: [DONE]``. The body is chunked, so connections are
kept alive as a real provider's are. The model name picks the pace:
``paced-10`` waits 10 ms before each token; any other name sends them as
fast as the socket takes them. Token ``i``'s text is known to every client,
so a benchmark checks the text it got end to end.

Usage: ``python bench/upstream.py --port 0`` (prints ``listening PORT`` once up).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time

_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
)


def expected_text(tokens: int) -> str:
    """The text a stream of ``tokens`` tokens carries."""
    return "".join(f" t{i}" for i in range(tokens))


def _chunk(payload: dict[str, object]) -> bytes:
    event = f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()
    return b"%x\r\n%s\r\n" % (len(event), event)


def _pace(model: str) -> float:
    if model.startswith("paced-"):
        return float(model.removeprefix("paced-")) / 1000
    return 0.0


async def _stream(writer: asyncio.StreamWriter, body: dict[str, object]) -> None:
    model = str(body.get("model", ""))
    tokens = int(str(body.get("max_tokens") or 200))
    pace = _pace(model)
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}  # fmt: skip
    # Each token's chunk is exactly what _chunk would make of it; only the text differs,
    # so the JSON is made once (thousands of paced streams share this process's core).
    head, tail = _chunk({**base, "choices": [_delta("\x00")]}).split(b"\\u0000")
    head = head.split(b"\r\n", 1)[1]
    writer.write(_HEAD)
    for index in range(tokens):
        if pace:
            await asyncio.sleep(pace)
        event = b"%s t%d%s" % (head, index, tail)
        writer.write(b"%x\r\n%s" % (len(event) - 2, event))
        await writer.drain()
    end = {"index": 0, "delta": {}, "finish_reason": "stop"}
    writer.write(_chunk({**base, "choices": [end]}))
    usage = {"prompt_tokens": 8, "completion_tokens": tokens, "total_tokens": tokens + 8}
    writer.write(_chunk({**base, "choices": [], "usage": usage}))
    writer.write(b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
    await writer.drain()


def _delta(text: str) -> dict[str, object]:
    return {"index": 0, "delta": {"content": text}, "finish_reason": None}


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = json.loads(await reader.readexactly(length)) if length else {}
            await _stream(writer, body)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def main(port: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", port, backlog=4096)
    print("listening", server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(main(parser.parse_args().port))
