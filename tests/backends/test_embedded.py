"""The embedded backend on the real model: exact text, pacing, closing, failures, threads."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from pathlib import Path

import jinja2
import llama_cpp
import pytest
from llama_cpp import Llama
from pydantic import ValidationError

from llmrouter_server.backends import llama_decode
from llmrouter_server.backends.base import BackendRequest, Delta
from llmrouter_server.backends.embedded import EmbeddedBackend
from llmrouter_server.backends.llama_decode import (
    Decode,
    Instance,
    available_cpus,
    bundled_model_path,
    llama_threads,
)
from llmrouter_server.config import EmbeddedBackendConfig, load_config
from llmrouter_server.values import FinishReason, Message, Role, Sampling, Usage
from tests.helpers import eventually

pytestmark = pytest.mark.timeout(60)

STORY = "Write a long story about a lighthouse keeper."


def _request(max_tokens: int) -> BackendRequest:
    return BackendRequest(
        model="smollm2-135m-instruct",
        messages=(Message(Role.USER, STORY),),
        max_tokens=max_tokens,
        sampling=Sampling(temperature=0),
    )


@pytest.fixture(scope="module")
async def backend() -> AsyncIterator[EmbeddedBackend]:
    backend = EmbeddedBackend("embedded", EmbeddedBackendConfig(n_threads=1, n_threads_batch=1))
    yield backend
    await backend.close()


async def _pull(stream: AsyncIterator[Delta], count: int) -> list[Delta]:
    return [await anext(stream) for _ in range(count)]


async def test_one_delta_per_token_with_the_bare_loops_greedy_text() -> None:
    config = EmbeddedBackendConfig(n_threads=1, n_threads_batch=1)
    backend = EmbeddedBackend("embedded", config)
    try:
        async with aclosing(backend.stream(_request(24))) as stream:
            deltas = [delta async for delta in stream]
    finally:
        await backend.close()

    # Both fresh: the whole prompt evaluated from an empty KV cache.
    llm = Llama(
        model_path=str(bundled_model_path()), n_ctx=config.n_ctx, n_threads=1, verbose=False
    )
    template = jinja2.Template(str(llm.metadata["tokenizer.chat_template"]))
    formatted = template.render(
        messages=[{"role": "user", "content": STORY}], add_generation_prompt=True
    )
    tokens = llm.tokenize(formatted.encode(), add_bos=False, special=True)
    bare: list[int] = []
    for token in llm.generate(tokens, temp=0):
        if len(bare) == 24 or llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
            break
        bare.append(token)

    assert [d.token_count for d in deltas] == [1] * 24 + [0]
    assert [d.token_ids for d in deltas[:-1]] == [(token,) for token in bare]
    assert "".join(d.text for d in deltas) == llm.detokenize(bare).decode()
    assert deltas[0].usage == Usage(len(tokens), 0)
    assert deltas[-1].finish_reason is FinishReason.LENGTH
    assert deltas[-1].usage == Usage(len(tokens), 24)


async def test_a_consumer_that_stops_pulling_leaves_the_decoder_one_token_ahead(
    backend: EmbeddedBackend,
) -> None:
    before = backend.decode_steps
    async with aclosing(backend.stream(_request(100))) as stream:
        await _pull(stream, 3)
        await eventually(lambda: backend.decode_steps == before + 4)
        await asyncio.sleep(0.3)
        assert backend.decode_steps == before + 4

        await _pull(stream, 1)
        await eventually(lambda: backend.decode_steps == before + 5)
        await asyncio.sleep(0.3)
        assert backend.decode_steps == before + 5


async def test_closing_stops_decoding_within_a_token_and_frees_the_instance(
    backend: EmbeddedBackend,
) -> None:
    async with aclosing(backend.stream(_request(200))) as stream:
        await _pull(stream, 2)
        assert backend.busy == 1
    await eventually(lambda: backend.busy == 0)
    steps = backend.decode_steps
    await asyncio.sleep(0.3)
    assert backend.decode_steps == steps

    # The instance serves the next generation to its end.
    async with aclosing(backend.stream(_request(5))) as stream:
        deltas = [delta async for delta in stream]
    assert [d.finish_reason for d in deltas] == [None] * 5 + [FinishReason.LENGTH]
    await eventually(lambda: backend.busy == 0)


async def test_a_failed_step_fails_the_pull_that_wanted_its_token(
    backend: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_step = Decode.step
    calls = 0

    def failing_third(decode: Decode, before_decode: Callable[[], None] | None = None) -> Delta:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("llama_decode returned -1")
        return real_step(decode, before_decode)

    monkeypatch.setattr(Decode, "step", failing_third)
    async with aclosing(backend.stream(_request(50))) as stream:
        assert len(await _pull(stream, 2)) == 2
        with pytest.raises(RuntimeError, match="llama_decode returned -1"):
            await anext(stream)
    await eventually(lambda: backend.busy == 0)

    # A failure of the token decoded ahead is moot when nobody pulls it.
    calls = 0
    async with aclosing(backend.stream(_request(50))) as stream:
        await _pull(stream, 2)
        await eventually(lambda: calls == 3)
    await eventually(lambda: backend.busy == 0)


class _ScriptedDecode:
    """Stands in for ``Decode``: three tokens, then the end; token 2 "decodes"
    until the test lets it finish."""

    def __init__(self, token_two: threading.Event) -> None:
        self._token_two = token_two
        self.steps = 0

    def step(self, before_decode: Callable[[], None] | None = None) -> Delta:
        self.steps += 1
        if before_decode is not None:
            before_decode()  # llama.cpp starts on this token
        if self.steps == 2 and not self._token_two.wait(10):
            raise RuntimeError("token 1 never reached the consumer")
        if self.steps == 4:
            return Delta(finish_reason=FinishReason.STOP)
        return Delta(text=f" t{self.steps}", token_count=1)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("add_reader", [True, False], ids=["pipe", "call_soon_threadsafe"])
async def test_a_token_reaches_the_consumer_while_the_next_one_decodes(
    backend: EmbeddedBackend, monkeypatch: pytest.MonkeyPatch, add_reader: bool
) -> None:
    token_two = threading.Event()
    monkeypatch.setattr(Instance, "open", lambda _, __: _ScriptedDecode(token_two))
    if not add_reader:
        loop = asyncio.get_running_loop()

        def no_reader(*_: object) -> None:
            raise NotImplementedError

        monkeypatch.setattr(loop, "add_reader", no_reader)
        monkeypatch.setattr(loop, "remove_reader", no_reader)

    async with aclosing(backend.stream(_request(10))) as stream:
        first = await asyncio.wait_for(anext(stream), 5)  # token 2 is still decoding
        token_two.set()
        rest = [delta async for delta in stream]

    assert [d.text for d in [first, *rest]] == [" t1", " t2", " t3", ""]
    assert rest[-1].finish_reason is FinishReason.STOP
    await eventually(lambda: backend.busy == 0)


def test_the_before_decode_callback_runs_right_before_each_llama_decode() -> None:
    instance = Instance("embedded", bundled_model_path(), EmbeddedBackendConfig(n_threads=1))
    decodes = 0
    real_decode = llama_cpp.llama_cpp.llama_decode

    def counting(*args: object) -> int:
        nonlocal decodes
        decodes += 1
        return int(real_decode(*args))

    calls: list[int] = []
    decode = instance.open(_request(3))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(llama_cpp.llama_cpp, "llama_decode", counting)
        for _ in range(4):
            decode.step(before_decode=lambda: calls.append(decodes))
    decode.close()

    # The prompt, then tokens 1 and 2 (sampling 2 and 3); the fourth step stops
    # at the length limit and decodes nothing. Each callback ran right before
    # its step's llama_decode.
    assert calls == [0, 1, 2]
    assert decodes == 3


def test_thread_counts_reach_the_llama_context() -> None:
    config = EmbeddedBackendConfig(n_threads=1, n_threads_batch=3)
    instance = Instance("embedded", bundled_model_path(), config)

    assert llama_cpp.llama_n_threads(instance.llm.ctx) == 1
    assert llama_cpp.llama_n_threads_batch(instance.llm.ctx) == 3


def test_unset_thread_counts_follow_the_cpus_the_server_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(llama_decode, "available_cpus", lambda: 8)
    assert llama_threads(EmbeddedBackendConfig()) == (4, 8)
    assert llama_threads(EmbeddedBackendConfig(n_threads=2, n_threads_batch=6)) == (2, 6)

    monkeypatch.setattr(llama_decode, "available_cpus", lambda: 1)
    assert llama_threads(EmbeddedBackendConfig()) == (1, 1)


@pytest.mark.parametrize(
    ("files", "cpus"),
    [
        ({}, 4),
        ({"cpu.max": "max 100000\n"}, 4),
        ({"cpu.max": "200000 100000\n"}, 2),
        ({"cpu.max": "150000 100000\n"}, 1),
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu.max": "1600000 100000\n"}, 4),
        ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4),
    ],
)
def test_available_cpus_is_the_affinity_capped_by_a_cgroup_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], cpus: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1, 2, 3}, raising=False)
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(content)

    assert available_cpus(tmp_path) == cpus


def test_n_threads_batch_is_configurable_and_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.startswith("LLMROUTER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LLMROUTER_BACKENDS__EMBEDDED__N_THREADS_BATCH", "3")

    assert load_config().backends == {"embedded": EmbeddedBackendConfig(n_threads_batch=3)}
    assert EmbeddedBackendConfig().n_threads_batch is None
    with pytest.raises(ValidationError):
        EmbeddedBackendConfig(n_threads_batch=0)
