"""Tokens per second through the router vs bare llama-cpp-python, same run.

The router runs as ``llmrouter serve`` in a subprocess on a loopback port and
is read by a gRPC client in this process. The bare loops run in this process
while the router is idle, on the same GGUF with the same settings (greedy,
the model's chat template, the same context size and thread count):

* ``bare generate``: ``Llama.generate`` token by token with detokenization,
  the primitive the embedded backend drives;
* ``bare chat stream``: ``Llama.create_chat_completion(stream=True)``, the
  high-level streaming API.

Runs alternate (router, bare, bare) to spread drift evenly, and the median
of each is reported. Usage: ``python bench/embedded.py [--runs 5 --max-tokens 256]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

import grpc
import llama_cpp
from llama_cpp import Llama, llama_chat_format
from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from llmrouter_server.backends.llama_decode import bundled_model_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.serve_process import llmrouter_serve

PROMPT = "Write a long story about a lighthouse keeper and a storm."
N_CTX = 2048


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()
    llm = Llama(model_path=str(bundled_model_path()), n_ctx=N_CTX, verbose=False)
    results: dict[str, list[float]] = {"router": [], "bare generate": [], "bare chat stream": []}
    texts: dict[str, str] = {}
    with llmrouter_serve(LLMROUTER_BACKENDS__EMBEDDED__N_CTX=str(N_CTX)) as address:
        for _ in range(args.runs):
            rate, texts["router"] = asyncio.run(_router_run(address, args.max_tokens))
            results["router"].append(rate)
            rate, texts["bare generate"] = _bare_generate(llm, args.max_tokens)
            results["bare generate"].append(rate)
            rate, texts["bare chat stream"] = _bare_chat(llm, args.max_tokens)
            results["bare chat stream"].append(rate)
    _report(results, texts, args)


async def _router_run(address: str, max_tokens: int) -> tuple[float, str]:
    start = gen_pb.StartGeneration(prompt=PROMPT)
    start.sampling.max_tokens = max_tokens
    start.sampling.temperature = 0
    async with grpc.aio.insecure_channel(address) as channel:
        stub = svc_grpc.RouterServiceStub(channel)
        began = time.perf_counter()
        pieces: list[str] = []
        tokens = 0
        async for response in stub.Generate(iter([svc_pb.GenerateRequest(start=start)])):
            event = response.event
            if event.HasField("chunk"):
                pieces.append(event.chunk.text)
            elif event.HasField("completed"):
                tokens = event.completed.usage.completion_tokens
        elapsed = time.perf_counter() - began
    return tokens / elapsed, "".join(pieces)


def _prompt_tokens(llm: Llama) -> list[int]:
    formatter = llama_chat_format.Jinja2ChatFormatter(
        template=str(llm.metadata["tokenizer.chat_template"]),
        eos_token=llm._model.token_get_text(llm.token_eos()),
        bos_token=llm._model.token_get_text(llm.token_bos()),
    )
    formatted = formatter(messages=[{"role": "user", "content": PROMPT}])
    return llm.tokenize(
        formatted.prompt.encode(), add_bos=not formatted.added_special, special=True
    )


def _bare_generate(llm: Llama, max_tokens: int) -> tuple[float, str]:
    began = time.perf_counter()
    out = bytearray()
    count = 0
    for token in llm.generate(_prompt_tokens(llm), temp=0, reset=True):
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
            break
        out += llm.detokenize([token])
        count += 1
        if count >= max_tokens:
            break
    elapsed = time.perf_counter() - began
    return count / elapsed, out.decode(errors="replace")


def _bare_chat(llm: Llama, max_tokens: int) -> tuple[float, str]:
    began = time.perf_counter()
    pieces: list[str] = []
    chunks = 0
    for chunk in llm.create_chat_completion(
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
    ):
        delta = chunk["choices"][0]["delta"]  # type: ignore[index]
        if delta.get("content"):
            pieces.append(delta["content"])
            chunks += 1
    elapsed = time.perf_counter() - began
    text = "".join(pieces)
    tokens = len(llm.tokenize(text.encode(), add_bos=False))
    return tokens / elapsed, text


def _report(
    results: dict[str, list[float]], texts: dict[str, str], args: argparse.Namespace
) -> None:
    router = statistics.median(results["router"])
    summary = {name: statistics.median(rates) for name, rates in results.items()}
    print(f"SmolLM2-135M-Instruct, greedy, max_tokens={args.max_tokens}, runs={args.runs}, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    for name, rates in results.items():
        spread = ", ".join(f"{rate:.1f}" for rate in rates)
        print(f"  {name:18} median {summary[name]:6.1f} tokens/s   ({spread})")
    for name in ("bare generate", "bare chat stream"):
        print(f"  router / {name:18} {router / summary[name]:.3f}")
    same = texts["router"] == texts["bare generate"]
    print(f"  router text equals bare generate text: {same}")
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    (out / "embedded.json").write_text(json.dumps({"runs": results, "median": summary}, indent=2))


if __name__ == "__main__":
    main()
