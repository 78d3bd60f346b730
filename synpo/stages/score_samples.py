"""Sampling-Ranking, each iteration: the configured reward (the scorer SynPO filters with) scores each of the n
answers the current model sampled for a prompt (`Reward.sample_scores`: pointwise rewards score each answer,
pairwise ones compare every two answers of a prompt; an answer the reward could not score has None)."""

from __future__ import annotations

from pathlib import Path

from synpo.config import RewardConfig
from synpo.errors import DataError
from synpo.io import read_jsonl, write_jsonl
from synpo.models import model_from_artifact
from synpo.rewards import make_reward


def run(out: Path, config: dict, samples: Path, m0: Path) -> dict:
    rows = read_jsonl(samples / "answers.jsonl", ("id", "prompt"))
    if any(len(r.get("samples", [])) < 2 for r in rows):
        raise DataError(f"{samples / 'answers.jsonl'}: every row needs at least two `samples` to rank")
    reward = make_reward(RewardConfig(**config["reward"]), model_from_artifact(m0), config["system_prompt"])
    scores = reward.sample_scores([r["prompt"] for r in rows], [r["samples"] for r in rows])
    write_jsonl(out / "scores.jsonl", ({"id": r["id"], "scores": s} for r, s in zip(rows, scores, strict=True)))
    flat = sum(scores, [])
    return {"prompts": len(rows), "samples": len(flat), "unscored": sum(s is None for s in flat)}
