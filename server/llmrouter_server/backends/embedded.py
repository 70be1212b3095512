"""The embedded backend: llama.cpp in the server process (llama-cpp-python).

Each loaded instance runs one generation at a time on its own worker thread,
off the event loop. The router's slots admit at most ``instances``
generations, so a free instance is always there when ``stream`` starts.
Pulling a delta decodes one token; closing the stream stops decoding within
one token and frees the instance.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from llmrouter_server.backends.base import BackendRequest, Delta
from llmrouter_server.backends.llama_decode import Decode, Instance, bundled_model_path
from llmrouter_server.config import EmbeddedBackendConfig
from llmrouter_server.errors import NotFound


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

    def __init__(self, name: str, config: EmbeddedBackendConfig) -> None:
        self.name = name
        self.model = config.model
        self.max_concurrency = config.instances
        self.decode_steps = 0
        path = config.model_path or bundled_model_path()
        self._workers = [
            _Worker(
                Instance(path, config.n_ctx, config.n_threads),
                ThreadPoolExecutor(1, thread_name_prefix=f"{name}-{index}"),
            )
            for index in range(config.instances)
        ]
        self._free = list(self._workers)

    @property
    def busy(self) -> int:
        """Instances running a generation now."""
        return len(self._workers) - len(self._free)

    async def stream(self, request: BackendRequest) -> AsyncIterator[Delta]:
        """Decodes one token per pulled delta on a free instance."""
        if request.model != self.model:
            raise NotFound(
                f"start.model: backend {self.name!r} serves only {self.model!r}",
                field="start.model",
            )
        worker = self._free.pop()
        loop = asyncio.get_running_loop()
        decode: Decode | None = None
        try:
            decode = await loop.run_in_executor(worker.thread, worker.instance.open, request)
            while True:
                delta = await loop.run_in_executor(worker.thread, self._step, decode)
                yield delta
                if delta.finish_reason is not None:
                    return
        finally:
            if decode is not None:
                # The worker runs jobs in order: this close runs after a step
                # still in flight and before the next generation's open.
                worker.thread.submit(decode.close)
            self._free.append(worker)

    def _step(self, decode: Decode) -> Delta:
        delta = decode.step()
        self.decode_steps += 1
        return delta

    async def close(self) -> None:
        """Stops the worker threads."""
        for worker in self._workers:
            worker.thread.shutdown(wait=True)
