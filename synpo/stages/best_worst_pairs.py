"""Sampling-Ranking and Self-Rewarding, each iteration: of a prompt's n sampled answers, the best-scored is chosen
and the worst-scored rejected. Empty answers (a model that ends its turn at once) are not ranked: SimPO has nothing
to train on in them, and SynPO's pair filter drops them too (counted as `empty_samples`). A prompt gives no pair when
its best and worst scores are equal, when fewer than two of its non-empty answers have a score (Self-Rewarding's
unparsable verdicts), or when its best and worst answers are the same text; it is kept in `dropped.jsonl` with the
reason. A fixed number of pairs is sampled and added to the preference set D of the earlier iterations, when one is
given."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from synpo.io import read_jsonl
from synpo.stages.build_pairs import accumulate


def best_and_worst(answers: list[str], scores: list[float | None]) -> tuple[int, int] | str:
    """Indices of the best and the worst scored non-empty answer (the first of equals), or why there is no pair."""
    scored = [i for i, s in enumerate(scores) if s is not None and answers[i].strip()]
    if len(scored) < 2:
        return "fewer_than_two_scored"
    best = max(scored, key=lambda i: scores[i])
    worst = min(scored, key=lambda i: scores[i])
    if scores[best] == scores[worst]:
        return "tie"
    return "identical_answers" if answers[best].strip() == answers[worst].strip() else (best, worst)


def run(out: Path, config: dict, samples: Path, scores: Path, previous: Path | None = None) -> dict:
    scored = {r["id"]: r["scores"] for r in read_jsonl(scores / "scores.jsonl")}
    counts: Counter = Counter()
    kept, dropped = [], []
    for r in read_jsonl(samples / "answers.jsonl", ("id", "prompt")):
        counts["empty_samples"] += sum(not a.strip() for a in r["samples"])
        picked = best_and_worst(r["samples"], scored[r["id"]])
        if isinstance(picked, str):
            counts[f"dropped_{picked}"] += 1
            dropped.append({**r, "scores": scored[r["id"]], "reason": picked})
            continue
        best, worst = picked
        kept.append(
            {
                "id": r["id"],
                "iteration": config["iteration"],
                "prompt": r["prompt"],
                "chosen": r["samples"][best],
                "rejected": r["samples"][worst],
                "chosen_score": scored[r["id"]][best],
                "rejected_score": scored[r["id"]][worst],
                "gap": scored[r["id"]][best] - scored[r["id"]][worst],
            }
        )
    return {
        "prompts": len(kept) + len(dropped),
        **counts,
        "kept": len(kept),
        **accumulate(out, kept, dropped, config, previous),
    }
