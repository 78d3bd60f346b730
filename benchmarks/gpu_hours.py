"""GPU-hours of the paper reproduction (`synpo -m +recipe=paper`), from token counts measured on a demo run.

    python benchmarks/gpu_hours.py outputs/<date>/<time>          # a finished (or partial) CPU demo run
    python benchmarks/gpu_hours.py RUN --answer-tokens 400         # assume longer answers than the demo's

1. Per item, from the demo run's stage outputs, tokenised with its M0's tokenizer: tokens of a generated
   question, an answer, a rewrite, a seed item (prompt + gold), a generator training example, an improver
   training example and a preference pair (prompt counted twice: once with chosen, once with rejected).
   The demo caps new tokens (question 64, answer 96, rewrite 160), so its answers are shorter than a 7B
   model's under the paper's caps (2048): `--answer-tokens` / `--rewrite-tokens` replace those two
   measurements by an assumption, printed as such.
2. Items per stage from the paper's data sizes (`experiment=paper_*` with `+recipe=paper`): 18k seed items
   (500 held out for the beta selection), 50k prompts and 10k added pairs per iteration, 4 iterations, 6
   betas trained per iteration, generator / improver SFT for 3 epochs, SimPO for 1 epoch on the accumulated D.
3. Time on A100 80GB GPUs, from these assumptions (change them with the flags):
   - training: 6 x N FLOPs per token (forward + backward, Kaplan et al. 2020, "Scaling Laws for Neural
     Language Models", Sec. 2.1) at 40% of the A100's 312 TFLOPS dense bf16 peak (NVIDIA A100 datasheet);
     40% model-FLOPs utilisation is an assumption for ZeRO-3 full fine-tuning of a 7B model on one 8-GPU node;
   - generation: 1,000 new tokens/s per A100 for a 7-8B model in vLLM with large offline batches (an
     assumption: published vLLM sweeps of Llama-3.1-8B reach ~500 tokens/s on one A100-40GB at 8 concurrent
     requests, still rising with concurrency, and ~1,400 tokens/s on an H100 at 16); prompt prefill not counted;
   - scoring: 2 x N_reward FLOPs per token (forward only) at the same 40%: PairRM (0.4B) for Mistral, ArmoRM
     (8B) for Llama3.
   The CPU throughput of this machine, measured from the same run's stage timings, is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

A100_BF16_FLOPS = 312e12
SETTINGS = {
    # name: (policy parameters, reward parameters)
    "mistral": (7.24e9, 0.435e9),
    "llama3": (8.03e9, 8.03e9),
}
PAPER = {
    "seed": 18000,
    "validation": 500,
    "prompts": 50000,
    "pairs": 10000,
    "iterations": 4,
    "betas": 6,
    "sft_epochs": 3,
    "simpo_epochs": 1,
}


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def measure(run: Path) -> dict:
    """Mean tokens per item of each kind found in the run's stage outputs (any iteration it finished), and the
    CPU tokens/s of its generation (the generator writing prompts) and training (the generator's SFT) stages."""
    from transformers import AutoTokenizer

    from synpo.models import model_from_artifact
    from synpo.templates import improver_prompt, question_prompt

    stages = run / "stages"
    m0 = run / "models" / "M0"
    tok = AutoTokenizer.from_pretrained(str(m0.resolve()) if m0.exists() else model_from_artifact(stages / "m0"))

    def n(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    kinds: dict[str, list[int]] = {
        k: [] for k in ("question", "answer", "rewrite", "pair", "improver_example", "generator_example", "seed_item")
    }
    written: list[int] = []
    for it in sorted(p for p in stages.glob("iter*") if p.is_dir()):
        kinds["question"] += [n(r["prompt"]) for r in rows(it / "prompts" / "prompts.jsonl")]
        written += [n(r["prompt"]) for r in rows(it / "prompts" / "prompts.jsonl")]
        written += [n(r["output"]) for r in rows(it / "prompts" / "dropped.jsonl") if "output" in r]
        kinds["answer"] += [n(r["answer"]) for r in rows(it / "policy_answers" / "answers.jsonl")]
        kinds["rewrite"] += [n(r["rewrite"]) for r in rows(it / "rewrites" / "rewrites.jsonl")]
        kinds["pair"] += [
            2 * n(r["prompt"]) + n(r["chosen"]) + n(r["rejected"]) for r in rows(it / "pairs" / "preference_set.jsonl")
        ]
        kinds["improver_example"] += [
            n(improver_prompt(r["prompt"], r["answer"])) + n(r["gold"])
            for r in rows(it / "improver" / "examples.jsonl")
        ]
    generator = rows(stages / "generator" / "examples.jsonl")
    kinds["generator_example"] = [
        n(question_prompt(r["keywords"])) + n(r["question"]) + n(r["solution"]) for r in generator
    ]
    kinds["seed_item"] = [n(r["prompt"]) + n(r["gold"]) for r in rows(stages / "seed_set" / "train.jsonl")]
    cpu = {}
    first = stages / "iter1" / "prompts" / "manifest.json"
    if first.is_file() and written:
        cpu["generated"] = sum(written) / json.loads(first.read_text())["seconds"]
    if (stages / "generator" / "manifest.json").is_file() and generator:
        g = json.loads((stages / "generator" / "manifest.json").read_text())
        cpu["trained"] = sum(kinds["generator_example"]) * g["config"]["sft"]["num_epochs"] / g["seconds"]
    means = {k: statistics.mean(v) for k, v in kinds.items() if v}
    template = n(improver_prompt("", ""))
    return {
        "means": means,
        "improver_template": template,
        "items": {k: len(v) for k, v in kinds.items()},
        "cpu_tokens_per_s": cpu,
    }


def paper_tokens(means: dict) -> dict:
    """Tokens of the whole reproduction of one base model, by kind of work."""
    p = PAPER
    gen = scored = train = 0.0
    # Once: the self-prompt generator G, SFT on the seed set.
    train += p["seed"] * p["sft_epochs"] * means["generator_example"]
    for t in range(1, p["iterations"] + 1):
        gen += p["prompts"] * means["question"]  # G writes the prompts
        gen += p["seed"] * means["answer"]  # M(t-1) answers the seed prompts
        scored += p["seed"] * (means["seed_item"] + means["answer"])  # gold vs M(t-1) answer
        train += p["seed"] * p["sft_epochs"] * means["improver_example"]  # R_t (upper bound: every seed item kept)
        gen += p["prompts"] * means["answer"] * (1 if t == 1 else 2)  # y(t-1), y0 (the same in iteration 1)
        gen += p["prompts"] * means["rewrite"]  # R_t rewrites y(t-1)
        scored += p["prompts"] * (2 * means["question"] + means["rewrite"] + means["answer"])
        train += p["betas"] * p["simpo_epochs"] * p["pairs"] * t * means["pair"]  # SimPO per beta on D (10k t pairs)
        gen += p["betas"] * p["validation"] * means["answer"]  # each candidate answers the validation prompts
        scored += p["betas"] * p["validation"] * 2 * means["answer"]
    return {"generated": gen, "scored": scored, "trained": train}


def gpu_hours(tokens: dict, policy: float, reward: float, mfu: float, gen_rate: float) -> dict:
    flops_rate = A100_BF16_FLOPS * mfu
    return {
        "generated": tokens["generated"] / gen_rate / 3600,
        "scored": tokens["scored"] * 2 * reward / flops_rate / 3600,
        "trained": tokens["trained"] * 6 * policy / flops_rate / 3600,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a CPU demo run directory (outputs/<date>/<time>)")
    parser.add_argument("--answer-tokens", type=float, help="assume this many tokens per answer instead")
    parser.add_argument("--rewrite-tokens", type=float, help="assume this many tokens per rewrite instead")
    parser.add_argument("--mfu", type=float, default=0.40, help="model-FLOPs utilisation of training / scoring")
    parser.add_argument("--gen-tokens-per-s", type=float, default=1000.0, help="vLLM new tokens/s per A100")
    args = parser.parse_args()

    m = measure(args.run)
    means = dict(m["means"])
    assumed = set()
    for kind, value in (("answer", args.answer_tokens), ("rewrite", args.rewrite_tokens or args.answer_tokens)):
        if value:
            means[kind] = value
            assumed.add(kind)
    missing = sorted({"question", "answer", "rewrite", "generator_example", "seed_item"} - set(means))
    if missing:
        raise SystemExit(f"{args.run}: no {', '.join(missing)} measured there: give --answer-tokens / --rewrite-tokens")
    if assumed or "pair" not in means:
        # A pair holds its prompt twice, one rewrite (chosen) and one answer (rejected).
        means["pair"] = 2 * means["question"] + means["rewrite"] + means["answer"]
        assumed.add("pair")
    if assumed or "improver_example" not in means:
        # The improver template around a seed prompt and an answer, and the gold answer as target.
        means["improver_example"] = means["seed_item"] + means["answer"] + m["improver_template"]
        assumed.add("improver_example")

    print(f"demo run: {args.run}")
    print("tokens per item:")
    for k, v in means.items():
        source = "assumed" if k in assumed else f"measured on {m['items'][k]} items"
        print(f"  {k:<18} {v:8.1f}  {source}")
    for k, v in m["cpu_tokens_per_s"].items():
        print(f"this machine (CPU, the run's M0): {v:6.1f} tokens/s {k}")
    tokens = paper_tokens(means)
    print(f"\npaper sizes: {PAPER}")
    print("tokens per base model: " + ", ".join(f"{k} {v / 1e9:.2f}B" for k, v in tokens.items()))
    print(
        f"assumed A100 throughput: training / scoring at {args.mfu:.0%} of {A100_BF16_FLOPS / 1e12:.0f} TFLOPS bf16, "
        f"generation {args.gen_tokens_per_s:.0f} new tokens/s per GPU"
    )
    total = 0.0
    for name, (policy, reward) in SETTINGS.items():
        hours = gpu_hours(tokens, policy, reward, args.mfu, args.gen_tokens_per_s)
        total += sum(hours.values())
        parts = ", ".join(f"{k} {v:,.0f}" for k, v in hours.items())
        print(f"{name:<8} {sum(hours.values()):8,.0f} A100-hours ({parts}); {sum(hours.values()) / 8:,.0f} h on 8 GPUs")
    print(f"both     {total:8,.0f} A100-hours")


if __name__ == "__main__":
    main()
