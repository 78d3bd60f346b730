"""Seed PO (Table 7): on the seed prompts, the gold answer is chosen and a model's own answer rejected, and the pair is
kept when its reward gap passes the threshold, "the same method as SynPO" (Appendix D: the reward filter; the seed's
gold answers are no synthetic rewrites, so no repetition filter). Writes `preference_set.jsonl`, the file the `simpo`
stage trains on; the pairs left out are in `dropped.jsonl` with the reason (`synpo/filters.py`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from synpo.filters import pair_verdict
from synpo.io import read_jsonl, write_jsonl

NO_REPETITION_FILTER = 1.0  # a repetition ratio never exceeds 1


def run(out: Path, config: dict, seed: Path, answers: Path, gaps: Path) -> dict:
    gold = {r["id"]: r["gold"] for r in read_jsonl(seed / "train.jsonl", ("id", "gold"))}
    scored = {r["id"]: r for r in read_jsonl(gaps / "gaps.jsonl", ("id",))}
    pairs, dropped, counts = [], [], Counter()
    for r in read_jsonl(answers / "answers.jsonl", ("id", "prompt")):
        pair = {"id": r["id"], "prompt": r["prompt"], "chosen": gold[r["id"]], "rejected": r["answer"]}
        gap = scored[r["id"]]["gap"] if r["id"] in scored else None
        verdict = pair_verdict(gap, pair["chosen"], pair["rejected"], config["threshold"], NO_REPETITION_FILTER, 3)
        if verdict == "kept":
            pairs.append(pair)
        else:
            counts[f"dropped_{verdict}"] += 1
            dropped.append({**pair, "gap": gap, "reason": verdict})
    write_jsonl(out / "preference_set.jsonl", pairs)
    write_jsonl(out / "dropped.jsonl", dropped)
    return {"candidates": len(pairs) + len(dropped), "preference_set": len(pairs), **counts}
