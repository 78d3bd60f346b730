"""Each iteration: R_t rewrites M(t-1)'s answers to the synthetic prompts; the rewrites are `chosen`."""

from __future__ import annotations

from pathlib import Path

from synpo.generation import Sampling, stage_generator
from synpo.io import read_jsonl, write_jsonl
from synpo.models import model_from_artifact
from synpo.templates import chat, improver_prompt


def run(out: Path, config: dict, improver: Path, answers: Path) -> dict:
    rows = read_jsonl(answers / "answers.jsonl")
    convs = [chat(improver_prompt(r["prompt"], r["answer"]), config["system_prompt"]) for r in rows]
    with stage_generator(model_from_artifact(improver), config) as gen:
        outputs = gen.generate(convs, Sampling(**config["sampling"]), desc="rewrite")
    write_jsonl(out / "rewrites.jsonl", ({**r, "rewrite": o[0]} for r, o in zip(rows, outputs, strict=True)))
    return {"rewrites": len(rows), "empty": sum(not o[0] for o in outputs), **gen.termination()}
