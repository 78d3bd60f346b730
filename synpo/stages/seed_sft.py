"""SFT from a model on the seed set: each seed prompt with its gold answer as the target (instruction fine-tuning,
IFT). Table 7's Seed SFT, and the first step of Self-Rewarding, which adds LLM-as-judge examples (EFT).

Yuan et al. (2024) build EFT examples from human-ranked answers judged by their SFT model. A seed set has one gold
answer per prompt, so here each of the first `eft_items` seed items gives three judge-format examples whose scores
follow from how they are made: the gold answer (5 points), the gold answer cut to its first third (2 points:
relevant and addressing part of the question, not resolving it), and another seed question's gold answer (0 points:
not relevant). The target is a one-line justification naming the criteria met, then "Score: N", the format the
judging stage parses (kept short so that a small model's judgment reaches its score within a few dozen tokens).
"""

from __future__ import annotations

from pathlib import Path

from synpo.adapters import from_settings
from synpo.config import SFTConfig
from synpo.io import read_jsonl, write_jsonl
from synpo.models import model_from_artifact
from synpo.templates import additive_judge_prompt, chat
from synpo.training import sft

EFT_VERDICTS = {
    "gold": (5, "Relevant, complete and direct: a helpful AI Assistant's answer reflecting expert knowledge."),
    "cut": (2, "Relevant and addresses part of the question, but stops before resolving it."),
    "other": (0, "It answers a different question: not relevant to the user's question."),
}


def cut(text: str) -> str:
    """The first third of an answer's words (at least one)."""
    words = text.split()
    return " ".join(words[: max(1, len(words) // 3)])


def eft_examples(rows: list[dict]) -> list[dict]:
    """Three judge-format examples per seed item: its gold, its gold cut short, the next item's gold."""
    examples = []
    for i, row in enumerate(rows):
        responses = {"gold": row["gold"], "cut": cut(row["gold"]), "other": rows[(i + 1) % len(rows)]["gold"]}
        if len(rows) < 2:
            del responses["other"]
        for kind, response in responses.items():
            points, why = EFT_VERDICTS[kind]
            examples.append(
                {
                    "id": f"{row['id']}-eft-{kind}",
                    "kind": f"eft_{kind}",
                    "prompt": additive_judge_prompt(row["prompt"], response),
                    "target": f"{why}\nScore: {points}",
                }
            )
    return examples


def run(out: Path, config: dict, seed: Path, model: Path) -> dict:
    rows = read_jsonl(seed / "train.jsonl", ("id", "prompt", "gold"))
    ift = [
        {"id": r["id"], "kind": "ift", "prompt": r["prompt"], "target": r["gold"]}
        for r in rows[: config["items"] or len(rows)]
    ]
    eft = eft_examples(rows[: config["eft_items"]]) if config["eft_items"] else []
    write_jsonl(out / "examples.jsonl", ift + eft)
    stats = sft(
        model_from_artifact(model),
        [
            {
                "prompt": chat(e["prompt"], config["system_prompt"]),
                "completion": [{"role": "assistant", "content": e["target"]}],
            }
            for e in ift + eft
        ],
        SFTConfig(**config["sft"]),
        out,
        dtype=config["dtype"],
        peft=from_settings(config["peft"]),
        seed=config["seed"],
    )
    return {"ift_examples": len(ift), "eft_examples": len(eft), **stats}
