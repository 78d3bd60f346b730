"""The reward model scores one text field of a file of (prompt, text) rows."""

from __future__ import annotations

from pathlib import Path

from synpo.config import RewardConfig
from synpo.io import read_jsonl, write_jsonl
from synpo.models import model_from_artifact
from synpo.rewards import make_reward


def run(out: Path, config: dict, texts: Path, m0: Path) -> dict:
    field = config["field"]
    rows = read_jsonl(texts / config["file"], ("id", "prompt"))
    if config.get("limit"):
        rows = rows[: config["limit"]]
    reward = make_reward(RewardConfig(**config["reward"]), model_from_artifact(m0), config["system_prompt"])
    scores = reward.score([r["prompt"] for r in rows], [r.get(field) or "" for r in rows])
    write_jsonl(out / "scores.jsonl", ({"id": r["id"], "score": s} for r, s in zip(rows, scores, strict=True)))
    return {"scored": len(rows), "mean_score": round(sum(scores) / max(1, len(scores)), 4)}
