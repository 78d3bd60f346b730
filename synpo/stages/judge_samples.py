"""Self-Rewarding, each iteration: the current model judges each of its own sampled answers with the additive
5-point LLM-as-judge prompt of Yuan et al. (2024).

`method.judging.verdict=generate` (theirs): the model writes `method.judging.judgments` judgments per answer
(sampled), and an answer's score is the mean of its parsable verdicts ("Score: N", N in 0..5). A verdict that does
not parse is counted and left out; an answer with no parsable verdict has no score (None) and can be neither chosen
nor rejected. `logprobs` (for a model too small to write the format): no text is written; the judge's answer is
started with "Score:" and the score is the expected points under its probabilities of " 0" ... " 5" there
(`JudgeClient.option_logprobs`), the mean of infinitely many sampled verdicts restricted to the valid ones."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from synpo.config import JudgingConfig
from synpo.generation import Sampling, stage_generator
from synpo.io import read_jsonl, write_jsonl
from synpo.judges import make_judge_client
from synpo.models import model_from_artifact
from synpo.templates import MAX_ADDITIVE_SCORE, additive_judge_prompt, chat, parse_additive_score

log = logging.getLogger(__name__)

SCORE_LEAD_IN = "Score:"
SCORE_OPTIONS = [f" {n}" for n in range(MAX_ADDITIVE_SCORE + 1)]


def score(verdicts: list[str]) -> tuple[float | None, int]:
    """The mean of the parsable verdicts' points (None when none parses), and how many did not parse."""
    points = [p for p in map(parse_additive_score, verdicts) if p is not None]
    return (sum(points) / len(points) if points else None), len(verdicts) - len(points)


def expected_score(logprobs: list[float]) -> float:
    """The mean points under the judge's probabilities of the scores 0..5 (renormalised over them)."""
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    return sum(points * w for points, w in enumerate(weights)) / sum(weights)


def run_logprobs(out: Path, config: dict, judge: Path, rows: list[dict], convs: list[list[dict]]) -> dict:
    client = make_judge_client(
        {"backend": "local", "verdict": "logprobs", "batch_size": config["generation"]["batch_size"]},
        model_from_artifact(judge),
        "method.judging",
    )
    try:
        scores = iter(map(expected_score, client.option_logprobs(convs, SCORE_OPTIONS, prefill=SCORE_LEAD_IN)))
    finally:
        client.close()
    write_jsonl(out / "scores.jsonl", ({"id": r["id"], "scores": [next(scores) for _ in r["samples"]]} for r in rows))
    return {"answers": len(convs), "verdicts": len(convs), "unparsable": 0, "unscored_answers": 0}


def run(out: Path, config: dict, judge: Path, samples: Path) -> dict:
    judging = JudgingConfig(**config["judging"])
    rows = read_jsonl(samples / "answers.jsonl", ("id", "prompt"))
    convs = [chat(additive_judge_prompt(r["prompt"], a), config["system_prompt"]) for r in rows for a in r["samples"]]
    if judging.verdict == "logprobs":
        return run_logprobs(out, config, judge, rows, convs)
    sampling = Sampling(
        max_new_tokens=judging.max_new_tokens,
        temperature=judging.temperature,
        n=judging.judgments,
        seed=config["seed"],
    )
    with stage_generator(model_from_artifact(judge), config) as gen:
        verdicts = iter(gen.generate(convs, sampling, desc="judge own answers"))
    judged, unparsable, unscored = [], 0, 0
    for r in rows:
        texts = [next(verdicts) for _ in r["samples"]]
        scored = [score(t) for t in texts]
        unparsable += sum(u for _, u in scored)
        unscored += sum(s is None for s, _ in scored)
        judged.append({"id": r["id"], "scores": [s for s, _ in scored], "verdicts": texts})
    write_jsonl(out / "scores.jsonl", judged)
    total = len(convs) * judging.judgments
    if unparsable:
        log.warning("self-judging: %d of %d verdicts did not parse; left out, never scored", unparsable, total)
    return {
        "answers": len(convs),
        "verdicts": total,
        "unparsable": unparsable,
        "unscored_answers": unscored,
        **gen.termination(),
    }
