"""Tokens per second through the router vs the bare llama-cpp-python loop.

The router runs as ``llmrouter serve`` in a subprocess on a loopback port, as
users run it: its event loop, gRPC server and decode thread have a process
(and a GIL) of their own, and the generated stub (``llmrouter.v1``) reads it
from this process. The bare loop is llama-cpp-python's own token loop in this
process: ``Llama.generate`` on the same GGUF, with the same context size,
thread counts and sampling (greedy), the model's chat template, and each token
detokenized as it comes, which is what the embedded backend drives.

Both sides see the same requests in the same order (one short warm-up, then
the measured runs), so their llama.cpp state matches before every run: like
the embedded backend, ``Llama.generate`` keeps the KV cache of the previous
generation and evaluates only what differs from it (here the prompt's last
token), so every run does the same work (that token, then ``max_tokens``
decodes) and greedy decoding gives the same text. The bench asserts that
every run's text is the first bare run's.

Runs are interleaved (bare, router, bare, router, ...) so drift on a shared
machine falls on both evenly; the median of each and the ratio of the
medians are reported, and written to ``bench/results/embedded.json``.

Usage: ``python bench/embedded.py [--pairs 7] [--max-tokens 256]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import llama_cpp
from llama_cpp import Llama, llama_chat_format
from llmrouter.v1 import generation_pb2 as gen_pb
from llmrouter.v1 import service_pb2 as svc_pb
from llmrouter.v1 import service_pb2_grpc as svc_grpc

from llmrouter_server.backends.llama_decode import bundled_model_path, llama_threads
from llmrouter_server.config import EmbeddedBackendConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.serve_process import llmrouter_serve

PROMPT = "Write a long story about a lighthouse keeper and a storm."
N_CTX = 2048
GOAL = 0.97


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", "--runs", type=int, default=7, help="bare/router pairs")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--n-threads", type=int, help="both sides; default: the router's")
    parser.add_argument("--n-threads-batch", type=int, help="both sides; default: the router's")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results"))
    args = parser.parse_args()

    config = EmbeddedBackendConfig(
        n_ctx=N_CTX, n_threads=args.n_threads, n_threads_batch=args.n_threads_batch
    )
    n_threads, n_threads_batch = llama_threads(config)
    llm = Llama(
        model_path=str(bundled_model_path()),
        n_ctx=N_CTX,
        n_threads=n_threads,
        n_threads_batch=n_threads_batch,
        verbose=False,
    )
    prompt = _prompt_tokens(llm)
    settings = {"LLMROUTER_BACKENDS__EMBEDDED__N_CTX": str(N_CTX)}
    if args.n_threads:
        settings["LLMROUTER_BACKENDS__EMBEDDED__N_THREADS"] = str(args.n_threads)
    if args.n_threads_batch:
        settings["LLMROUTER_BACKENDS__EMBEDDED__N_THREADS_BATCH"] = str(args.n_threads_batch)

    pairs: list[dict[str, Any]] = []
    expected: str | None = None
    with llmrouter_serve(**settings) as address:
        asyncio.run(_router_run(address, 8))  # warm: first-call setup on both sides
        _bare_run(llm, prompt, 8)
        for number in range(1, args.pairs + 1):
            bare = _bare_run(llm, prompt, args.max_tokens)
            router = asyncio.run(_router_run(address, args.max_tokens))
            expected = bare["text"] if expected is None else expected
            pair = {
                "bare": _rate(bare),
                "router": _rate(router),
                "ratio": _rate(router)["tokens_per_second"] / _rate(bare)["tokens_per_second"],
                "bare_text_identical": bare["text"] == expected,
                "router_text_identical": router["text"] == expected,
            }
            pairs.append(pair)
            print(f"  pair {number}: bare {pair['bare']['tokens_per_second']:6.1f}  "
                  f"router {pair['router']['tokens_per_second']:6.1f} tokens/s  "
                  f"ratio {pair['ratio']:.3f}", flush=True)  # fmt: skip
    _report(pairs, expected or "", args, n_threads, n_threads_batch)


async def _router_run(address: str, max_tokens: int) -> dict[str, Any]:
    start = gen_pb.StartGeneration(prompt=PROMPT)
    start.sampling.max_tokens = max_tokens
    start.sampling.temperature = 0
    async with grpc.aio.insecure_channel(address) as channel:
        await asyncio.wait_for(channel.channel_ready(), 30)
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
    return {"tokens": tokens, "seconds": elapsed, "text": "".join(pieces)}


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


def _bare_run(llm: Llama, prompt: list[int], max_tokens: int) -> dict[str, Any]:
    """llama-cpp-python's token loop, greedy, as the backend drives it."""
    began = time.perf_counter()
    out = bytearray()
    count = 0
    vocab = llm._model.vocab
    tokens = llm.generate(prompt, temp=0)
    while count < max_tokens:  # checked first, as the backend does: no token decoded past it
        token = next(tokens)
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            break
        out += llm.detokenize([token])
        count += 1
    tokens.close()
    elapsed = time.perf_counter() - began
    return {"tokens": count, "seconds": elapsed, "text": out.decode(errors="replace")}


def _rate(run: dict[str, Any]) -> dict[str, float]:
    return {
        "tokens": run["tokens"],
        "seconds": run["seconds"],
        "tokens_per_second": run["tokens"] / run["seconds"],
    }


def _report(
    pairs: list[dict[str, Any]],
    text: str,
    args: argparse.Namespace,
    n_threads: int,
    n_threads_batch: int,
) -> None:
    bare = statistics.median(p["bare"]["tokens_per_second"] for p in pairs)
    router = statistics.median(p["router"]["tokens_per_second"] for p in pairs)
    identical = all(p["bare_text_identical"] and p["router_text_identical"] for p in pairs)
    tokens = {p["bare"]["tokens"] for p in pairs} | {p["router"]["tokens"] for p in pairs}
    summary = {
        "model": bundled_model_path().name,
        "max_tokens": args.max_tokens,
        "tokens": sorted(tokens),
        "n_ctx": N_CTX,
        "n_threads": n_threads,
        "n_threads_batch": n_threads_batch,
        "cpus": len(os.sched_getaffinity(0)),
        "machine": platform.machine(),
        "llama_cpp_python": llama_cpp.__version__,
        "bare_median_tokens_per_second": bare,
        "router_median_tokens_per_second": router,
        "ratio_of_medians": router / bare,
        "median_pair_ratio": statistics.median(p["ratio"] for p in pairs),
        "goal": GOAL,
        "text_identical": identical,
        "pairs": pairs,
        "text": text,
    }
    print(f"{summary['model']}, greedy, max_tokens={args.max_tokens} ({sorted(tokens)} made), "
          f"n_threads={n_threads}, n_threads_batch={n_threads_batch}, "
          f"{summary['cpus']} CPUs, {len(pairs)} interleaved pairs")  # fmt: skip
    print(f"  bare   median {bare:6.1f} tokens/s")
    print(f"  router median {router:6.1f} tokens/s")
    print(f"  router / bare {router / bare:.3f} (median of pair ratios "
          f"{summary['median_pair_ratio']:.3f}; goal >= {GOAL})")  # fmt: skip
    print(f"  text identical in every run: {identical}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "embedded.json").write_text(json.dumps(summary, indent=2) + "\n")
    assert identical, "a run's text differs from the first bare run's"


if __name__ == "__main__":
    main()
