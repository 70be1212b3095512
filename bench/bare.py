"""The Python stack's ceiling: a bare grpc.aio server that only writes Generate's messages.

It implements the contract's Generate and nothing else: for a start request
of ``max_tokens`` tokens it writes a ``started`` event, one ``chunk`` event
per token with the text the benchmark upstream would have sent (`` t{i}``)
and a ``completed`` event, as fast as grpc.aio takes them (model ``paced-N``:
N ms before each token, as the upstream paces), with the same server options
``llmrouter serve`` uses. No upstream, no routing, no log:
what llmrouter relays per second is compared with what this writes.

Usage: ``python bench/bare.py --port 0`` (prints ``listening PORT`` once up).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from llmrouter.v1 import events_pb2 as ev_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc


class BareServicer(svc_grpc.RouterServiceServicer):
    """Generate writes the events of a generation it does not run."""

    async def Generate(  # noqa: N802 - the contract's name
        self, requests: AsyncIterator[svc_pb.GenerateRequest], context: Any
    ) -> AsyncIterator[svc_pb.GenerateResponse]:
        first = await anext(aiter(requests))
        tokens = first.start.sampling.max_tokens or 200
        model = first.start.model
        pace = float(model.removeprefix("paced-")) / 1000 if model.startswith("paced-") else 0.0
        stream_id = "bare"
        yield svc_pb.GenerateResponse(
            event=ev_pb.StreamEvent(stream_id=stream_id, offset=0, started=ev_pb.Started())
        )
        for index in range(tokens):
            if pace:
                await asyncio.sleep(pace)
            chunk = ev_pb.Chunk(text=f" t{index}", token_count=1)
            event = ev_pb.StreamEvent(stream_id=stream_id, offset=index + 1, chunk=chunk)
            yield svc_pb.GenerateResponse(event=event)
        completed = ev_pb.Completed(finish_reason=ev_pb.FINISH_REASON_STOP)
        event = ev_pb.StreamEvent(stream_id=stream_id, offset=tokens + 1, completed=completed)
        yield svc_pb.GenerateResponse(event=event)


async def main(port: int) -> None:
    server = grpc.aio.server(options=[("grpc.max_concurrent_streams", 1000)])
    svc_grpc.add_RouterServiceServicer_to_server(BareServicer(), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("listening", bound, flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(main(parser.parse_args().port))
