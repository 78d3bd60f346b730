"""The reward gap of (prompt, chosen, rejected) triples: chosen and rejected texts come from two files
joined on `id` (gold vs M(t-1)'s answer on the seed, R_t's rewrite vs M0's answer on new prompts)."""

from __future__ import annotations

from pathlib import Path

from synpo.config import RewardConfig
from synpo.io import read_jsonl, write_jsonl
from synpo.models import model_from_artifact
from synpo.rewards import make_reward


def run(out: Path, config: dict, chosen: Path, rejected: Path, m0: Path) -> dict:
    c_file, c_field = config["chosen"]
    r_file, r_field = config["rejected"]
    rejected_by_id = {r["id"]: r[r_field] for r in read_jsonl(rejected / r_file, ("id", r_field))}
    rows = [r for r in read_jsonl(chosen / c_file, ("id", "prompt")) if r["id"] in rejected_by_id]
    reward = make_reward(RewardConfig(**config["reward"]), model_from_artifact(m0), config["system_prompt"])
    gaps = reward.gaps(
        [r["prompt"] for r in rows], [r.get(c_field) or "" for r in rows], [rejected_by_id[r["id"]] for r in rows]
    )
    write_jsonl(out / "gaps.jsonl", ({"id": r["id"], **g} for r, g in zip(rows, gaps, strict=True)))
    values = [g["gap"] for g in gaps if g["gap"] is not None]
    counts = {"pairs": len(rows), "mean_gap": round(sum(values) / max(1, len(values)), 4)}
    if len(values) < len(gaps):  # a judge's unparsable verdicts: reported, never scored
        counts |= {"unscored": len(gaps) - len(values), "unparsed_verdicts": sum(g["unparsed"] for g in gaps)}
    return counts
