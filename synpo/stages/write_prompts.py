"""Each iteration: G writes one question per keyword list; well-formed questions are kept, and each
rule reports how many it removed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from synpo.config import PromptFilterConfig
from synpo.generation import Sampling, stage_generator
from synpo.io import read_jsonl, write_jsonl
from synpo.models import model_from_artifact
from synpo.templates import QUESTION_START, QUESTION_STOP, chat, parse_question, question_prompt


def check(question: str | None, reason: str, rules: PromptFilterConfig, seen: set[str]) -> str:
    if question is None:
        return reason
    words = len(question.split())
    if words < rules.min_words:
        return "too_short"
    if words > rules.max_words:
        return "too_long"
    if question.lower() in seen:
        return "duplicate"
    return "ok"


def run(out: Path, config: dict, generator: Path, keywords: Path) -> dict:
    lists = read_jsonl(keywords / "keywords.jsonl")
    # The answer is started with "<question>" and stopped at "</question>": only the question is needed.
    sampling = Sampling(**config["sampling"], stop=[QUESTION_STOP], prefill=QUESTION_START)
    convs = [chat(question_prompt(r["keywords"]), config["system_prompt"]) for r in lists]
    with stage_generator(model_from_artifact(generator), config) as gen:
        outputs = gen.generate(convs, sampling, desc="write prompts")
    rules = PromptFilterConfig(**config["prompt_filter"])
    counts: Counter = Counter(generated=len(lists))
    kept, dropped, seen = [], [], set()
    for row, (text,) in zip(lists, outputs, strict=True):
        question, reason = parse_question(text)
        verdict = check(question, reason, rules, seen)
        if verdict == "ok":
            seen.add(question.lower())
            kept.append({"id": row["id"].replace("kw-", "syn-"), "prompt": question, "keywords": row["keywords"]})
        else:
            counts[f"removed_{verdict}"] += 1
            dropped.append({"id": row["id"], "keywords": row["keywords"], "output": text, "reason": verdict})
    counts["kept"] = len(kept)
    write_jsonl(out / "prompts.jsonl", kept)
    write_jsonl(out / "dropped.jsonl", dropped)
    return {**counts, **gen.termination()}
