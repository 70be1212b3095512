"""The embedded backend: llama.cpp in the server process (llama-cpp-python).

Each loaded instance runs one generation at a time on its own worker thread,
off the event loop. The router's slots admit at most ``instances``
generations, so a free instance is always there when ``stream`` starts.
Decoding runs at most one token ahead of the pulls (the next token decodes
while the last one travels to the consumer); closing the stream stops
decoding within that token and frees the instance.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from llmrouter_server.backends.base import BackendRequest, Delta
from llmrouter_server.backends.llama_decode import Decode, Instance, bundled_model_path
from llmrouter_server.config import EmbeddedBackendConfig
from llmrouter_server.errors import BackendError


@dataclass(eq=False)
class _Worker:
    instance: Instance
    thread: ThreadPoolExecutor


class EmbeddedBackend:
    """Generates with local llama.cpp instances.

    Attributes:
        decode_steps: Tokens decoded over all generations; a stopped
            generation stops this counter.
    """

    kind = "embedded"
    supports_json = True

    def __init__(self, name: str, config: EmbeddedBackendConfig) -> None:
        self.name = name
        self.model = config.model
        self.max_concurrency = config.instances
        self.decode_steps = 0
        path = config.model_path or bundled_model_path()
        self._workers = [
            _Worker(
                Instance(name, path, config.n_ctx, config.n_threads),
                ThreadPoolExecutor(1, thread_name_prefix=f"{name}-{index}"),
            )
            for index in range(config.instances)
        ]
        self._free: asyncio.Queue[_Worker] = asyncio.Queue()
        for worker in self._workers:
            self._free.put_nowait(worker)

    @property
    def busy(self) -> int:
        """Instances running or finishing a generation now."""
        return len(self._workers) - self._free.qsize()

    async def stream(self, request: BackendRequest) -> AsyncGenerator[Delta, None]:
        """Decodes one token per pulled delta on a free instance."""
        if request.model != self.model:
            raise BackendError(self.name, f"serves only {self.model!r}, not {request.model!r}")
        # The router admits at most ``instances`` streams; one that just ended
        # may still be finishing its last token, so this wait is at most a token.
        worker = await self._free.get()
        loop = asyncio.get_running_loop()
        decode: Decode | None = None
        pending: asyncio.Future[Delta] | None = None
        try:
            decode = await loop.run_in_executor(worker.thread, worker.instance.open, request)
            pending = loop.run_in_executor(worker.thread, self._step, decode)
            while True:
                delta = await pending
                if delta.finish_reason is None:
                    # Decode the next token while this one travels to the
                    # consumer: never more than one token ahead of the pulls.
                    pending = loop.run_in_executor(worker.thread, self._step, decode)
                yield delta
                if delta.finish_reason is not None:
                    return
        finally:
            if pending is not None and not pending.cancel() and not pending.cancelled():
                pending.exception()  # retrieved: an unused look-ahead's failure is moot
            # Runs after a step still in flight (the worker runs jobs in order);
            # the instance is free again once it has run.
            closing = worker.thread.submit(_close, decode)
            closing.add_done_callback(
                lambda _: loop.call_soon_threadsafe(self._free.put_nowait, worker)
            )

    def _step(self, decode: Decode) -> Delta:  # runs on the worker thread
        delta = decode.step()
        self.decode_steps += 1
        return delta

    async def close(self) -> None:
        """Stops the worker threads."""
        for worker in self._workers:
            worker.thread.shutdown(wait=True)


def _close(decode: Decode | None) -> None:  # runs on the worker thread
    if decode is not None:
        decode.close()
