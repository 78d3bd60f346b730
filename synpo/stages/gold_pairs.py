"""Seed PO (Table 7): on the seed prompts, the gold answer is chosen and a model's own answer rejected. Writes
`preference_set.jsonl`, the file the `simpo` stage trains on; items whose answer is empty or the gold itself are
left out, in `dropped.jsonl`."""

from __future__ import annotations

from pathlib import Path

from synpo.io import read_jsonl, write_jsonl


def run(out: Path, config: dict, seed: Path, answers: Path) -> dict:
    gold = {r["id"]: r["gold"] for r in read_jsonl(seed / "train.jsonl", ("id", "gold"))}
    pairs, dropped = [], []
    for r in read_jsonl(answers / "answers.jsonl", ("id", "prompt")):
        pair = {"id": r["id"], "prompt": r["prompt"], "chosen": gold[r["id"]], "rejected": r["answer"]}
        if not r["answer"].strip() or r["answer"].strip() == gold[r["id"]].strip():
            dropped.append({**pair, "reason": "empty" if not r["answer"].strip() else "same_as_gold"})
        else:
            pairs.append(pair)
    write_jsonl(out / "preference_set.jsonl", pairs)
    write_jsonl(out / "dropped.jsonl", dropped)
    return {"pairs": len(pairs), "dropped": len(dropped)}
