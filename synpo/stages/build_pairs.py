"""Each iteration: pair chosen = R_t(y_(t-1)) with rejected = y_0 (M0's answer), keep the pairs that pass
the reward-gap threshold and the repetition filter, sample a fixed number of them, and add them to the
accumulated preference set D (paper Sec. 2.2-2.3)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from synpo.filters import pair_verdict
from synpo.io import read_jsonl, write_jsonl


def run(
    out: Path,
    config: dict,
    rewrites: Path,
    rejected: Path,
    gaps: Path,
    previous: Path | None = None,
) -> dict:
    y0 = {r["id"]: r["answer"] for r in read_jsonl(rejected / "answers.jsonl")}
    scored = {r["id"]: r for r in read_jsonl(gaps / "gaps.jsonl")}
    counts: Counter = Counter()
    kept, dropped = [], []
    for r in read_jsonl(rewrites / "rewrites.jsonl"):
        pair = {
            "id": r["id"],
            "iteration": config["iteration"],
            "prompt": r["prompt"],
            "chosen": r["rewrite"],
            "rejected": y0[r["id"]],
            **scored[r["id"]],  # id, gap, and the two scores for pointwise rewards
        }
        verdict = pair_verdict(
            pair["gap"],
            pair["chosen"],
            pair["rejected"],
            config["threshold"],
            config["max_repetition"],
            config["ngram"],
        )
        counts[verdict if verdict == "kept" else f"dropped_{verdict}"] += 1
        (kept if verdict == "kept" else dropped).append({**pair, "verdict": verdict})
    counts["candidates"] = len(kept) + len(dropped)
    return {**counts, **accumulate(out, kept, dropped, config, previous)}


def accumulate(out: Path, kept: list[dict], dropped: list[dict], config: dict, previous: Path | None) -> dict:
    """Sample `per_iteration` of the kept pairs (seeded) and add them to the previous iterations' set D; every
    list is written (`kept`, `dropped`, `pairs` added, `preference_set` = D). Also returns the mean gap of the kept."""
    added = random.Random(config["seed"]).sample(kept, min(config["per_iteration"], len(kept)))
    history = read_jsonl(previous / "preference_set.jsonl") if previous else []
    write_jsonl(out / "kept.jsonl", kept)
    write_jsonl(out / "dropped.jsonl", dropped)
    write_jsonl(out / "pairs.jsonl", added)
    write_jsonl(out / "preference_set.jsonl", history + added)
    gaps = [p["gap"] for p in kept]
    return {
        "added": len(added),
        "preference_set": len(history) + len(added),
        "mean_gap_kept": round(sum(gaps) / len(gaps), 4) if gaps else None,
    }
