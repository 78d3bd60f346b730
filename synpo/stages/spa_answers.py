"""SPA, each iteration: pi(i-1) answers every new prompt twice (two samples of one call, temperature 0.7).

Prompts with an empty answer are left out (in `dropped.jsonl`): the reward cannot rank an empty answer.
"""

from __future__ import annotations

from pathlib import Path

from synpo.generation import Sampling, stage_generator
from synpo.io import read_jsonl, write_jsonl
from synpo.models import load_tokenizer, model_from_artifact
from synpo.templates import chat, cut_prompt


def run(out: Path, config: dict, model: Path, prompts: Path) -> dict:
    path = model_from_artifact(model)
    tokenizer = load_tokenizer(path)
    rows = [
        {**r, "prompt": cut_prompt(tokenizer, r["prompt"], config["max_prompt_length"])}
        for r in read_jsonl(prompts / "prompts.jsonl", ("id", "prompt"))
    ]
    convs = [chat(r["prompt"], config["system_prompt"]) for r in rows]
    with stage_generator(path, config) as gen:
        outputs = gen.generate(convs, Sampling(**config["sampling"], n=2), desc="answer twice")
    kept = [{**r, "answer_a": a, "answer_b": b} for r, (a, b) in zip(rows, outputs, strict=True) if a and b]
    dropped = [{**r, "answers": o, "reason": "empty"} for r, o in zip(rows, outputs, strict=True) if not all(o)]
    write_jsonl(out / "answers.jsonl", kept)
    write_jsonl(out / "dropped.jsonl", dropped)
    return {"prompts": len(rows), "answered": len(kept), "dropped_empty": len(dropped), **gen.termination()}
