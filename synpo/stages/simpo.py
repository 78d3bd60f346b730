"""Each iteration: M(t) = SimPO from M0 on the accumulated preference set D (paper Sec. 2.3)."""

from __future__ import annotations

from pathlib import Path

from synpo.adapters import from_settings
from synpo.config import OptimizerConfig
from synpo.errors import DataError
from synpo.io import read_jsonl
from synpo.models import model_from_artifact
from synpo.templates import chat
from synpo.training import simpo


def run(out: Path, config: dict, m0: Path, preferences: Path) -> dict:
    pairs = read_jsonl(preferences / "preference_set.jsonl", ("prompt", "chosen", "rejected"))
    if not pairs:
        raise DataError(f"{preferences / 'preference_set.jsonl'}: no preference pair to train on")
    rows = [
        {
            "prompt": chat(p["prompt"], config["system_prompt"]),
            "chosen": [{"role": "assistant", "content": p["chosen"]}],
            "rejected": [{"role": "assistant", "content": p["rejected"]}],
        }
        for p in pairs
    ]
    stats = simpo(
        model_from_artifact(m0),
        rows,
        OptimizerConfig(**config["optimizer"]),
        out,
        dtype=config["dtype"],
        peft=from_settings(config["peft"]),
        seed=config["seed"],
    )
    return {"pairs": len(pairs), **stats}
