"""The embedded backend: llama.cpp in the server process (llama-cpp-python).

Each loaded instance runs one generation at a time on its own worker thread,
off the event loop. The router's slots admit at most ``instances``
generations, so a free instance is always there when ``stream`` starts.

The worker thread runs the whole token loop of a generation itself and is
never more than one token ahead of the pulls: it may decode token ``n + 1``
once the consumer has pulled for token ``n``. A consumer that keeps pulling
therefore never makes the decoder wait for the event loop between tokens
(the next token decodes while the last one travels to the consumer); one
that stops pulling stops the decoder a token later. Closing the stream stops
decoding within the token in flight and frees the instance.

A token is handed to the event loop (one wakeup per token) right before
llama.cpp starts on the next one, and the wakeup keeps the GIL until
llama.cpp releases it: the loop's Python for the token then runs while the
next one decodes, instead of holding the GIL, a turn of the loop per token,
while llama.cpp waits to start (what a profile of the router showed: ~1 ms
of each ~17 ms token with asyncio's own ``call_soon_threadsafe`` wakeup,
whose write lets the woken loop take the GIL first). A token with no next
one to start (the last, or the consumer is behind) is handed over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from llmrouter_server.backends.base import BackendRequest, Delta
from llmrouter_server.backends.llama_decode import Decode, Instance, bundled_model_path
from llmrouter_server.config import EmbeddedBackendConfig
from llmrouter_server.errors import BackendError


@dataclass(eq=False)
class _Worker:
    instance: Instance
    thread: ThreadPoolExecutor
    wakeup: _Wakeup = field(default_factory=lambda: _Wakeup())


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
                Instance(name, path, config),
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
        handoff: _Handoff | None = None
        try:
            decode = await loop.run_in_executor(worker.thread, worker.instance.open, request)
            handoff = _Handoff(loop, worker.wakeup)
            worker.thread.submit(self._run, decode, handoff)
            while True:
                delta = await handoff.pull()
                yield delta
                if delta.finish_reason is not None:
                    return
        finally:
            if handoff is not None:
                handoff.stop()
            # The instance is free once the worker has run what it was given
            # (the open, the step in flight): the worker runs jobs in order.
            worker.thread.submit(lambda: None).add_done_callback(
                lambda _: loop.call_soon_threadsafe(self._free.put_nowait, worker)
            )

    def _run(self, decode: Decode, handoff: _Handoff) -> None:  # runs on the worker thread
        """The generation's token loop: one step per pull, one step ahead at most."""
        try:
            while handoff.wait_for_pull():
                try:
                    delta = decode.step(before_decode=handoff.flush)
                except BaseException as error:
                    handoff.flush()
                    handoff.put(error)
                    return
                self.decode_steps += 1
                if delta.finish_reason is not None:
                    handoff.flush()
                    handoff.put(delta)
                    return
                handoff.hold(delta)
        finally:
            decode.close()

    async def close(self) -> None:
        """Stops the worker threads."""
        for worker in self._workers:
            worker.thread.shutdown(wait=True)
            worker.wakeup.close()


class _Handoff:
    """Tokens from the worker thread to the event loop, paced by the pulls.

    ``allowed`` counts the steps the worker may have started: one more than
    the pulls so far, so it decodes the token being waited for and at most
    one ahead, and waits only when it is ahead. A decoded token is held until
    llama.cpp starts on the next one (``flush``, called from ``Decode.step``)
    or until the worker must wait or ends; the loop is woken once per token,
    when the token is handed over.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, wakeup: _Wakeup) -> None:
        self._loop = loop
        self._wakeup = wakeup
        self._ready: deque[Delta | BaseException] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._held: Delta | None = None
        self._pacing = threading.Condition(threading.Lock())
        self._allowed = 1  # made on the stream's first pull: its token may decode
        self._taken = 0
        self._stopped = False
        self._signal: Callable[[], object] = wakeup.signal
        if not wakeup.listen(loop, self._woken):  # a loop without add_reader
            self._signal = functools.partial(loop.call_soon_threadsafe, self._woken)

    async def pull(self) -> Delta:
        """The next delta; the worker may decode the one after it meanwhile."""
        with self._pacing:
            self._allowed += 1
            self._pacing.notify()
        while not self._ready:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._ready.popleft()
        if isinstance(item, BaseException):
            raise item
        return item

    def stop(self) -> None:
        """The consumer is gone: the worker stops after the step in flight."""
        self._wakeup.unlisten(self._loop)
        with self._pacing:
            self._stopped = True
            self._pacing.notify()

    def _woken(self) -> None:  # runs on the event loop
        self._wakeup.drain()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # The worker thread's side.

    def wait_for_pull(self) -> bool:
        """Waits until the next step is allowed; False once stopped.

        The held delta goes to the event loop first when the step must wait.
        """
        with self._pacing:
            if self._stopped or self._taken < self._allowed:
                self._taken += 1
                return not self._stopped
        self.flush()
        with self._pacing:
            while not self._stopped and self._taken >= self._allowed:
                self._pacing.wait()
            self._taken += 1
            return not self._stopped

    def hold(self, delta: Delta) -> None:
        """Keeps a delta to hand over with ``flush``."""
        self.flush()
        self._held = delta

    def flush(self) -> None:
        """Hands the held delta, if any, to the event loop."""
        if self._held is not None:
            held, self._held = self._held, None
            self.put(held)

    def put(self, item: Delta | BaseException) -> None:
        """Hands a step's delta (or failure) to the event loop."""
        self._ready.append(item)
        self._signal()


def _write_holding_the_gil() -> Callable[[int, bytes, int], int] | None:
    """libc's ``write(2)`` called through ``ctypes.PyDLL``, which keeps the GIL."""
    try:
        write = ctypes.PyDLL(None).write
    except (OSError, AttributeError):  # no C library in the process's namespace
        return None
    write.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
    write.restype = ctypes.c_ssize_t
    return write


_WRITE = _write_holding_the_gil()


class _Wakeup:
    """Wakes the event loop from a worker thread without giving up the GIL.

    A pipe whose read end the loop watches (``add_reader``) while a stream
    runs. ``os.write``, like asyncio's own wakeup, releases the GIL around
    the system call, and the loop it wakes takes the GIL there; this write
    keeps it, so the worker goes on to its next GIL-free call (llama.cpp)
    first. Both ends are non-blocking: a full pipe already means "wake up".
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def listen(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> bool:
        """Runs ``callback`` on ``loop`` after each ``signal``; False when the
        loop cannot watch a file descriptor (then nothing is set up)."""
        try:
            loop.add_reader(self._read, callback)
        except NotImplementedError:
            return False
        return True

    def unlisten(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stops the callbacks; a ``signal`` after this wakes the next listener
        for nothing."""
        with contextlib.suppress(NotImplementedError):
            loop.remove_reader(self._read)

    def signal(self) -> None:  # runs on the worker thread
        """Wakes the listener."""
        if _WRITE is not None:
            _WRITE(self._write, b"\0", 1)
        else:
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._write, b"\0")

    def drain(self) -> None:  # runs on the event loop
        """Reads what ``signal`` wrote."""
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._read, 4096):
                pass

    def close(self) -> None:
        """Closes the pipe; the backend no longer runs streams."""
        os.close(self._read)
        os.close(self._write)
