"""SPA, each iteration: direct preference judgment. Of pi(i-1)'s two answers, the one with the higher reward
(the implicit reward log pi(i-1)(y|x) - log pi_ref(y|x) in the paper, scored by the `reward_gap` stage) is chosen.
Pairs the reward cannot order (equal scores, e.g. identical answers, or a judge's unparsable verdicts) are left out,
in `dropped.jsonl`."""

from __future__ import annotations

from pathlib import Path

from synpo.io import read_jsonl, write_jsonl


def run(out: Path, config: dict, answers: Path, gaps: Path) -> dict:
    gap = {r["id"]: r for r in read_jsonl(gaps / "gaps.jsonl")}
    pairs, ties, unscored = [], [], []
    for r in read_jsonl(answers / "answers.jsonl"):
        g = gap[r["id"]]
        if g["gap"] is None:
            unscored.append({"id": r["id"], "prompt": r["prompt"], "reason": "unscored"})
            continue
        a_wins = g["gap"] > 0
        score_a, score_b = g.get("chosen_score"), g.get("rejected_score")  # pointwise rewards only
        pair = {
            "id": r["id"],
            "prompt": r["prompt"],
            "chosen": r["answer_a"] if a_wins else r["answer_b"],
            "rejected": r["answer_b"] if a_wins else r["answer_a"],
            "margin": abs(g["gap"]),
            "chosen_score": score_a if a_wins else score_b,
            "rejected_score": score_b if a_wins else score_a,
        }
        (pairs if g["gap"] else ties).append(pair)
    write_jsonl(out / "pairs.jsonl", pairs)
    write_jsonl(out / "dropped.jsonl", ties + unscored)
    margins = sorted(p["margin"] for p in pairs)
    return {
        "labelled": len(pairs),
        "dropped_ties": len(ties),
        "dropped_unscored": len(unscored),
        "first_answer_chosen": sum(gap[p["id"]]["gap"] > 0 for p in pairs),
        "median_margin": round(margins[len(margins) // 2], 4) if margins else None,
    }
