"""Each iteration: train the response improver R_t from M0 (paper Sec. 2.2, Figure 7).

Seed items where the reward prefers the gold answer over M(t-1)'s answer by more than the threshold
become examples: input = the self-improver template with the question and M(t-1)'s answer, target =
the gold answer.
"""

from __future__ import annotations

from pathlib import Path

from synpo.adapters import from_settings
from synpo.config import SFTConfig
from synpo.errors import DataError
from synpo.io import read_jsonl, write_jsonl
from synpo.models import model_from_artifact
from synpo.templates import chat, improver_prompt
from synpo.training import sft


def select(seed_rows: list[dict], answers: list[dict], gaps: list[dict], threshold: float) -> list[dict]:
    """Seed items whose gap score(gold) - score(answer) exceeds the threshold, with both texts."""
    gold = {r["id"]: r["gold"] for r in seed_rows}
    gap = {r["id"]: r["gap"] for r in gaps}
    return [
        {"id": r["id"], "prompt": r["prompt"], "answer": r["answer"], "gold": gold[r["id"]], "gap": gap[r["id"]]}
        for r in answers
        if gap[r["id"]] is not None and gap[r["id"]] > threshold
    ]


def run(out: Path, config: dict, seed: Path, answers: Path, gaps: Path, m0: Path) -> dict:
    answered = read_jsonl(answers / "answers.jsonl")
    examples = select(read_jsonl(seed / "train.jsonl"), answered, read_jsonl(gaps / "gaps.jsonl"), config["threshold"])
    if not examples:
        raise DataError(
            f"no seed item has score(gold) - score(answer) > reward.threshold={config['threshold']}: "
            "lower reward.threshold or use a stronger reward"
        )
    write_jsonl(out / "examples.jsonl", examples)
    rows = [
        {
            "prompt": chat(improver_prompt(e["prompt"], e["answer"]), config["system_prompt"]),
            "completion": [{"role": "assistant", "content": e["gold"]}],
        }
        for e in examples
    ]
    stats = sft(
        model_from_artifact(m0),
        rows,
        SFTConfig(**config["sft"]),
        out,
        dtype=config["dtype"],
        peft=from_settings(config["peft"]),
        seed=config["seed"],
    )
    return {"seed_answered": len(answered), "examples": len(examples), **stats}
