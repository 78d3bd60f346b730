"""SPA's DPO: step 0 from M0 on the seed pairs, then each iteration from pi(i-1) on its self-labelled pairs, the
starting model being the reference; self-refinement (`synpo/noise_aware_dpo.py`) in the iterations only."""

from __future__ import annotations

from pathlib import Path

from synpo.adapters import from_settings
from synpo.config import OptimizerConfig, RefinementConfig
from synpo.errors import DataError
from synpo.io import read_jsonl
from synpo.models import load_tokenizer, model_from_artifact
from synpo.templates import chat, cut_prompt
from synpo.training import dpo


def run(out: Path, config: dict, model: Path, pairs: Path) -> dict:
    path = pairs / config["pairs_file"]
    rows = read_jsonl(path, ("prompt", "chosen", "rejected"))
    if not rows:
        raise DataError(f"{path}: no preference pair to train on")
    start = model_from_artifact(model)
    tokenizer = load_tokenizer(start)
    examples = [
        {
            "prompt": chat(cut_prompt(tokenizer, p["prompt"], config["max_prompt_length"]), config["system_prompt"]),
            "chosen": [{"role": "assistant", "content": p["chosen"]}],
            "rejected": [{"role": "assistant", "content": p["rejected"]}],
        }
        for p in rows
    ]
    refinement = config["refinement"]
    stats = dpo(
        start,
        examples,
        OptimizerConfig(**config["optimizer"]),
        out,
        refinement=RefinementConfig(**refinement) if refinement else None,
        extrapolation=config["extrapolation"],
        dtype=config["dtype"],
        peft=from_settings(config["peft"]),
        seed=config["seed"],
    )
    return {"pairs": len(rows), **stats}
