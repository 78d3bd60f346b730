"""Human-labelled preference pairs for offline SimPO ("Manual Collection" in Table 2), normalised to
`preference_set.jsonl` rows of {"id", "prompt", "chosen", "rejected"}, the file the `simpo` stage trains on.

The paper's are UltraFeedback binarized (`HuggingFaceH4/ultrafeedback_binarized`, split `train_prefs`, about 61k
pairs, the data of SimPO's own recipes); the demo's are `synpo/data/spa_seed_demo` (gold answers of the seed demo
against hand-written worse ones).
"""

from __future__ import annotations

import random
from pathlib import Path

from synpo.config import PreferenceDataConfig
from synpo.errors import DataError
from synpo.io import read_jsonl, resolve_path, write_jsonl
from synpo.stages.spa_seed import hub_pairs

FIELDS = ("id", "prompt", "chosen", "rejected")


def hub_preferences(cfg: PreferenceDataConfig) -> list[dict]:
    from datasets import load_dataset

    rows = load_dataset(cfg.hub_id, split=cfg.hub_split).shuffle(seed=cfg.shuffle_seed)
    return hub_pairs(rows, cfg.hub_id, cfg.max_pairs, lambda i, row: str(row.get("prompt_id") or f"pair-{i}"))


def jsonl_pairs(cfg: PreferenceDataConfig) -> list[dict]:
    if not cfg.file:
        raise DataError("method.data.file is required when method.data.source=jsonl")
    rows = read_jsonl(resolve_path(cfg.file), FIELDS, "method.data.file")
    random.Random(cfg.shuffle_seed).shuffle(rows)
    return rows[: cfg.max_pairs]


LOADERS = {"hub": hub_preferences, "jsonl": jsonl_pairs}


def run(out: Path, config: dict) -> dict:
    cfg = PreferenceDataConfig(**config["data"])
    if cfg.source not in LOADERS:
        raise DataError(f"method.data.source={cfg.source!r}: expected one of {sorted(LOADERS)}")
    rows = [{k: r[k] for k in FIELDS} for r in LOADERS[cfg.source](cfg)]
    if not rows:
        raise DataError(f"method.data ({cfg.source}): no preference pair")
    # Pairs whose answers are the same text teach nothing (and UltraFeedback binarized has a few).
    kept = [r for r in rows if r["chosen"].strip() != r["rejected"].strip()]
    write_jsonl(out / "preference_set.jsonl", kept)
    return {"pairs": len(rows), "dropped_identical": len(rows) - len(kept), "preference_set": len(kept)}
