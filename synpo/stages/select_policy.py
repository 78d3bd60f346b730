"""Per-iteration beta search (paper Sec. 3: beta searched over [2..12] for each optimisation): pick the
SimPO candidate whose answers to the held-out seed validation prompts win most often against the gold
answers under the reward (ties count half; then the larger mean gap, then the smaller beta). Answers the reward
could not score (a judge's unparsable verdicts) are left out and counted."""

from __future__ import annotations

import json
from pathlib import Path

from synpo.errors import DataError
from synpo.io import read_jsonl, write_json


def win_rate(gaps: list[dict]) -> float:
    return sum(1.0 if g["gap"] > 0 else 0.5 if g["gap"] == 0 else 0.0 for g in gaps) / len(gaps)


def run(out: Path, config: dict, **candidates: Path) -> dict:
    table = []
    for beta, folder in zip(config["betas"], candidates.values(), strict=True):
        rows = read_jsonl(folder / "gaps.jsonl")
        gaps = [g for g in rows if g["gap"] is not None]
        if not gaps:
            raise DataError(
                f"{folder / 'gaps.jsonl'}: no validation answer was scored ({len(rows)} unscored); is the validation "
                "split empty, or does the judge never give a parsable verdict?"
            )
        mean_gap = sum(g["gap"] for g in gaps) / len(gaps)
        table.append(
            {
                "beta": beta,
                "win_rate": win_rate(gaps),
                "mean_gap": mean_gap,
                "n": len(gaps),
                "unscored": len(rows) - len(gaps),
            }
        )
    best = max(table, key=lambda r: (r["win_rate"], r["mean_gap"], -r["beta"]))
    write_json(
        out / "selection.json", {"metric": "reward win rate vs gold (validation)", "best": best, "candidates": table}
    )
    return {"best_beta": best["beta"], "best_win_rate": round(best["win_rate"], 4), "candidates": json.dumps(table)}
