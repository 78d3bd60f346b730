"""Each iteration, for `method.prompt_source=self_instruct`: M0 writes new tasks Self-Instruct's way (Wang et al.
2023), continuing a numbered list of random seed questions, instead of SynPO's keyword-driven generator (Table 6).

Kept tasks pass the prompt filter (length, exact repeats) and Self-Instruct's novelty filter: ROUGE-L F1 with every
in-context example and every task kept before at most `max_rouge_l` (0.7 in the paper; quadratic in the tasks kept,
as Self-Instruct's own filter)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from synpo.config import PromptFilterConfig
from synpo.errors import DataError
from synpo.generation import Sampling, stage_generator
from synpo.io import read_jsonl, write_jsonl
from synpo.models import model_from_artifact
from synpo.stages.write_prompts import check
from synpo.templates import chat, parse_self_instruct, self_instruct_prompt


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F1 of two texts over lower-cased words (longest common subsequence)."""
    x, y = a.lower().split(), b.lower().split()
    if not x or not y:
        return 0.0
    prev = [0] * (len(y) + 1)
    for wx in x:
        row = [0]
        for j, wy in enumerate(y, 1):
            row.append(prev[j - 1] + 1 if wx == wy else max(prev[j], row[j - 1]))
        prev = row
    lcs = prev[-1]
    return 0.0 if lcs == 0 else 2 * lcs / (len(x) + len(y))


def run(out: Path, config: dict, model: Path, seed: Path) -> dict:
    questions = [r["prompt"] for r in read_jsonl(seed / "train.jsonl", ("prompt",))]
    k = config["examples"]
    if len(questions) < k:
        raise DataError(
            f"{seed / 'train.jsonl'}: {len(questions)} seed questions, fewer than method.self_instruct.examples={k}"
        )
    rng = random.Random(config["sampling"]["seed"])
    examples = [rng.sample(questions, k) for _ in range(config["n"])]
    requests = [self_instruct_prompt(e) for e in examples]
    prefill = requests[0][1]
    # Every request has `examples` tasks, so every answer starts with the same "Task k+1:" and ends at the next.
    sampling = Sampling(**config["sampling"], stop=[f"Task {k + 2}:"], prefill=prefill)
    convs = [chat(r, config["system_prompt"]) for r, _ in requests]
    with stage_generator(model_from_artifact(model), config) as gen:
        outputs = gen.generate(convs, sampling, desc="self-instruct")
    rules = PromptFilterConfig(**config["prompt_filter"])
    counts: Counter = Counter(generated=len(requests))
    kept, dropped, seen, limit = [], [], set(), config["max_rouge_l"]
    for i, (shown, (text,)) in enumerate(zip(examples, outputs, strict=True)):
        task, reason = parse_self_instruct(text, prefill)
        verdict = check(task, reason, rules, seen)
        if verdict == "ok" and max(rouge_l(task, q) for q in shown + [r["prompt"] for r in kept]) > limit:
            verdict = "similar"
        if verdict == "ok":
            seen.add(task.lower())
            kept.append({"id": f"si-{config['iteration']}-{i:06d}", "prompt": task})
        else:
            counts[f"removed_{verdict}"] += 1
            dropped.append({"id": f"si-{config['iteration']}-{i:06d}", "output": text, "reason": verdict})
    counts["kept"] = len(kept)
    write_jsonl(out / "prompts.jsonl", kept)
    write_jsonl(out / "dropped.jsonl", dropped)
    return {**counts, **gen.termination()}
