"""Evaluate one model on the configured suites (`evaluation/`), after training or on any checkpoint.

Cached like every stage: the key depends on the model's key and the evaluation, generation and judge
settings, so a sweep evaluates a shared model once and a rerun pays for nothing twice.

Besides the suites' metrics, `answers` holds the model's AlpacaEval answers' mean length in its tokens and the share
cut at `max_new_tokens` (re-tokenised length >= max_new_tokens - 1, as in `synpo/stages/audit.py`).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from synpo.config import EvaluationConfig, GenerationConfig
from synpo.io import read_jsonl
from synpo.models import load_tokenizer, model_from_artifact


def answer_lengths(outputs: Path, model_path: str, max_new_tokens: int) -> dict:
    texts = [r["output"] for r in read_jsonl(outputs)]
    if not texts:
        return {}
    lengths = [len(ids) for ids in load_tokenizer(model_path)(texts, add_special_tokens=False)["input_ids"]]
    return {
        "mean_tokens": round(sum(lengths) / len(lengths), 1),
        "cut_share": round(sum(n >= max_new_tokens - 1 for n in lengths) / len(lengths), 4),
        "n": len(lengths),
    }


def run(out: Path, config: dict, model: Path, m0: Path) -> dict:
    from synpo import evaluation

    cfg = OmegaConf.merge(OmegaConf.structured(EvaluationConfig), config["evaluation"])
    results = evaluation.run(
        model_from_artifact(model),
        cfg,
        out,
        GenerationConfig(**config["generation"]),
        model_name=config["name"],
        dtype=config["dtype"],
        judge_default_model=model_from_artifact(m0),
    )
    counts = {suite: result["metrics"] for suite, result in results.items()}
    outputs = out / config["name"] / cfg.alpaca_eval.name / "model_outputs.jsonl"
    if "alpaca_eval" in cfg.suites and outputs.is_file():
        counts["answers"] = answer_lengths(outputs, model_from_artifact(model), cfg.alpaca_eval.max_new_tokens)
    return counts
