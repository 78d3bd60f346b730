"""A model answers a prompt file (M(t-1) on seed or synthetic prompts, M0 on synthetic prompts).

With `sampling.n` > 1 each row also holds all n answers in `samples` (Sampling-Ranking, Self-Rewarding); `answer` is
the first of them."""

from __future__ import annotations

from pathlib import Path

from synpo.generation import Sampling, stage_generator
from synpo.io import read_jsonl, write_jsonl
from synpo.models import model_from_artifact
from synpo.templates import chat


def run(out: Path, config: dict, model: Path, prompts: Path) -> dict:
    rows = read_jsonl(prompts / config["prompts_file"], ("id", "prompt"))
    if config.get("limit"):
        rows = rows[: config["limit"]]
    convs = [chat(r["prompt"], config["system_prompt"]) for r in rows]
    with stage_generator(model_from_artifact(model), config) as gen:
        outputs = gen.generate(convs, Sampling(**config["sampling"]), desc="answer")
    write_jsonl(
        out / "answers.jsonl",
        (
            {"id": r["id"], "prompt": r["prompt"], "answer": o[0], **({"samples": o} if len(o) > 1 else {})}
            for r, o in zip(rows, outputs, strict=True)
        ),
    )
    return {"answers": len(rows), "empty": sum(not o[0] for o in outputs), **gen.termination()}
