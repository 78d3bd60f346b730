"""Pair filters: the reward-gap threshold and the paper's "no more than 50% repetition patterns".

The paper does not define the repetition metric; here it is the fraction of a text's word n-grams that
repeat an earlier n-gram of the same text (0 for no repetition, near 1 for a loop), with n from config.
"""

from __future__ import annotations


def repetition_ratio(text: str, n: int = 3) -> float:
    words = text.lower().split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def pair_verdict(
    gap: float | None, chosen: str, rejected: str, threshold: float, max_repetition: float, ngram: int
) -> str:
    """'kept', or the first reason the pair is dropped."""
    if not chosen.strip() or not rejected.strip():
        return "empty_answer"
    if chosen.strip() == rejected.strip():
        return "identical"
    if max(repetition_ratio(chosen, ngram), repetition_ratio(rejected, ngram)) > max_repetition:
        return "repetition"
    if gap is None:  # the reward could not score it (a judge's verdict did not parse)
        return "unscored"
    if gap <= threshold:
        return "below_threshold"
    return "kept"
