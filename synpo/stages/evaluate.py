"""Evaluate one model on the configured suites (`evaluation/`), after training or on any checkpoint.

Cached like every stage: the key depends on the model's key and the evaluation, generation and judge
settings, so a sweep evaluates a shared model once and a rerun pays for nothing twice.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from synpo.config import EvaluationConfig, GenerationConfig
from synpo.models import model_from_artifact


def run(out: Path, config: dict, model: Path, m0: Path) -> dict:
    from synpo import evaluation

    results = evaluation.run(
        model_from_artifact(model),
        OmegaConf.merge(OmegaConf.structured(EvaluationConfig), config["evaluation"]),
        out,
        GenerationConfig(**config["generation"]),
        model_name=config["name"],
        dtype=config["dtype"],
        judge_default_model=model_from_artifact(m0),
    )
    return {suite: result["metrics"] for suite, result in results.items()}
