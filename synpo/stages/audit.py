"""Each SynPO iteration: what the model is about to be taught, counted (a small preference signal is easily swamped
by length). On the candidate pairs of `build_pairs` (chosen = R_t's rewrite, rejected = M0's answer) and the answers
they come from, in M0's tokens:
- chosen / rejected lengths of the kept pairs (mean, median) and their ratio;
- how much the improver lengthens an answer (mean rewrite length over mean length of the answer it rewrote);
- the shares of answers and rewrites cut at their `max_new_tokens`: the backends return text only, so an output whose
  re-tokenised length reaches max_new_tokens - 1 counts as cut (one that ended on its own has spent a token on its end);
- the mean repetition ratio of chosen and rejected (`synpo/filters.py`) and the share of identical pairs;
- a histogram of the reward gaps with the threshold, in `audit.json` (for a plot).
`warnings` turns the counts into the run's warnings; its limits (`audit.*`) are not part of the stage's key."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from synpo.filters import repetition_ratio
from synpo.io import read_jsonl, write_json
from synpo.models import load_tokenizer, model_from_artifact


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def _cut(lengths: list[int], limit: int) -> float | None:
    return _mean([float(n >= limit - 1) for n in lengths])


def run(out: Path, config: dict, pairs: Path, rewrites: Path, rejected: Path, m0: Path) -> dict:
    tokenizer = load_tokenizer(model_from_artifact(m0))

    def tokens(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []

    candidates = read_jsonl(pairs / "kept.jsonl") + read_jsonl(pairs / "dropped.jsonl")
    kept = [p for p in candidates if p["verdict"] == "kept"]
    rewritten = read_jsonl(rewrites / "rewrites.jsonl")
    chosen, rejected_len = tokens([p["chosen"] for p in kept]), tokens([p["rejected"] for p in kept])
    answers, rewrites_len = tokens([r["answer"] for r in rewritten]), tokens([r["rewrite"] for r in rewritten])
    m0_answers = tokens([r["answer"] for r in read_jsonl(rejected / "answers.jsonl")])
    limits = config["max_new_tokens"]
    counts = {
        "chosen_tokens_mean": _mean(chosen),
        "chosen_tokens_median": statistics.median(chosen) if chosen else None,
        "rejected_tokens_mean": _mean(rejected_len),
        "rejected_tokens_median": statistics.median(rejected_len) if rejected_len else None,
        "length_ratio": round(sum(chosen) / sum(rejected_len), 4) if kept and sum(rejected_len) else None,
        "improver_lengthening": round(sum(rewrites_len) / sum(answers), 4) if sum(answers) else None,
        "answers_cut": _cut(answers, limits["answer"]),
        "m0_answers_cut": _cut(m0_answers, limits["answer"]),
        "rewrites_cut": _cut(rewrites_len, limits["rewrite"]),
        "chosen_repetition": _mean([repetition_ratio(p["chosen"], config["ngram"]) for p in candidates]),
        "rejected_repetition": _mean([repetition_ratio(p["rejected"], config["ngram"]) for p in candidates]),
        "identical_share": _mean([float(p["chosen"].strip() == p["rejected"].strip()) for p in candidates]),
        "threshold": config["threshold"],
    }
    gaps = [p["gap"] for p in candidates if p["gap"] is not None]
    hist, edges = np.histogram(gaps, bins=config["bins"]) if gaps else ([], [])
    write_json(
        out / "audit.json",
        {
            **counts,
            "gap_histogram": {"edges": [float(e) for e in edges], "counts": [int(c) for c in hist]},
            "gaps_unscored": len(candidates) - len(gaps),
        },
    )
    return counts


def warnings(counts: dict, iteration: int, max_length_ratio: float, max_truncated: float) -> list[str]:
    """The audit's findings worth a warning: chosen much longer than rejected, or many outputs cut."""
    found = []
    ratio = counts.get("length_ratio")
    if ratio is not None and ratio > max_length_ratio:
        found.append(
            f"iteration {iteration}: chosen answers are {ratio:.2f}x as long as rejected ones "
            f"(> audit.max_length_ratio={max_length_ratio}); the preference may be learnt as 'longer is better'"
        )
    for key, what in (("answers_cut", "answers"), ("m0_answers_cut", "M0's answers"), ("rewrites_cut", "rewrites")):
        share = counts.get(key)
        if share is not None and share > max_truncated:
            found.append(
                f"iteration {iteration}: {share:.0%} of {what} are cut at max_new_tokens "
                f"(> audit.max_truncated={max_truncated}); raise method.max_new_tokens"
            )
    return found
