"""Sampling-Ranking, each iteration: the configured reward (the scorer SynPO filters with) scores each of the n
answers the current model sampled for a prompt (`Reward.sample_scores`: pointwise rewards score each answer,
pairwise ones compare every two answers of a prompt; an answer the reward could not score has None).

The answers are read, scored and written `CHUNK` prompts at a time: the paper's 50k prompts x 5 samples would
otherwise be held whole, with their round-robin games (benchmarks/scale_rehearsal.py)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from synpo.config import RewardConfig
from synpo.errors import DataError
from synpo.io import iter_jsonl, write_jsonl
from synpo.models import model_from_artifact
from synpo.rewards import Reward, make_reward

CHUNK = 512


def scored(rows: Iterator[dict], reward: Reward, counts: dict) -> Iterator[dict]:
    """{"id", "scores"} per row, scoring `CHUNK` rows at a time; `counts` is filled in as they go."""
    while chunk := list(islice(rows, CHUNK)):
        scores = reward.sample_scores([r["prompt"] for r in chunk], [r["samples"] for r in chunk])
        for r, s in zip(chunk, scores, strict=True):
            counts["prompts"] += 1
            counts["samples"] += len(s)
            counts["unscored"] += sum(x is None for x in s)
            yield {"id": r["id"], "scores": s}


def run(out: Path, config: dict, samples: Path, m0: Path) -> dict:
    source = samples / "answers.jsonl"
    # A streaming pass first, so a row that cannot be ranked fails before the reward model loads.
    for r in iter_jsonl(source, ("id", "prompt")):
        if len(r.get("samples", [])) < 2:
            raise DataError(f"{source}: row {r['id']!r}: every row needs at least two `samples` to rank")
    reward = make_reward(RewardConfig(**config["reward"]), model_from_artifact(m0), config["system_prompt"])
    counts = {"prompts": 0, "samples": 0, "unscored": 0}
    write_jsonl(out / "scores.jsonl", scored(iter_jsonl(source), reward, counts))
    return counts
