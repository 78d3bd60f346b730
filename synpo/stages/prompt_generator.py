"""Once: train the self-prompt generator G from M0 (paper Sec. 2.1, Figure 3).

Each seed prompt x_i gives one example: 2 of its keywords plus 1 noise keyword of another seed prompt,
shuffled, fill the question-generation template; the target is x_i and its gold answer in
<question>/<solution> form.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from synpo.adapters import from_settings
from synpo.config import KeywordConfig, SFTConfig
from synpo.io import read_jsonl, write_jsonl
from synpo.keywords import NoiseWords, content_words
from synpo.models import model_from_artifact
from synpo.templates import chat, question_prompt, question_target
from synpo.training import sft


def build_examples(seed_rows: list[dict], kw: KeywordConfig, rng: random.Random) -> tuple[list[dict], Counter]:
    words = [content_words(r["prompt"], kw.min_length) for r in seed_rows]
    noise = NoiseWords(words)
    counts: Counter = Counter()
    examples = []
    for i, row in enumerate(seed_rows):
        if len(words[i]) < kw.own:
            counts["skipped_few_keywords"] += 1
            continue
        own = rng.sample(words[i], kw.own)
        keywords = own + noise.draw(words[i], kw.noise, rng)
        rng.shuffle(keywords)
        examples.append({"id": row["id"], "keywords": keywords, "question": row["prompt"], "solution": row["gold"]})
    counts["examples"] = len(examples)
    return examples, counts


def to_sft_rows(examples: list[dict], system_prompt: str | None) -> list[dict]:
    return [
        {
            "prompt": chat(question_prompt(e["keywords"]), system_prompt),
            "completion": [{"role": "assistant", "content": question_target(e["question"], e["solution"])}],
        }
        for e in examples
    ]


def run(out: Path, config: dict, seed: Path, m0: Path) -> dict:
    rng = random.Random(config["seed"])
    rows = read_jsonl(seed / "train.jsonl")
    rng.shuffle(rows)
    rows = rows[: config["items"]] if config["items"] else rows
    examples, counts = build_examples(rows, KeywordConfig(**config["keywords"]), rng)
    write_jsonl(out / "examples.jsonl", examples)
    stats = sft(
        model_from_artifact(m0),
        to_sft_rows(examples, config["system_prompt"]),
        SFTConfig(**config["sft"]),
        out,
        dtype=config["dtype"],
        peft=from_settings(config["peft"]),
        seed=config["seed"],
    )
    return {**counts, **stats}
