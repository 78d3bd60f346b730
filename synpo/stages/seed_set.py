"""The seed set: prompts with gold answers, normalised to `train.jsonl` / `validation.jsonl` rows of
{"id", "prompt", "gold"} (plus "category" where known), whatever the source."""

from __future__ import annotations

import random
from pathlib import Path

from synpo.config import SeedDataConfig
from synpo.errors import DataError
from synpo.io import read_jsonl, resolve_path, write_jsonl

FIELDS = ("id", "prompt", "gold")


def load_jsonl(cfg: SeedDataConfig) -> tuple[list[dict], list[dict]]:
    train = read_jsonl(resolve_path(cfg.train_file), FIELDS, "data.train_file")
    validation = read_jsonl(resolve_path(cfg.validation_file), FIELDS) if cfg.validation_file else []
    return train, validation


def gold_answer(row: dict, source: str, gold_by_prompt: dict[str, str]) -> str | None:
    """The gold answer of one UltraFeedback row according to `data.gold_source`."""
    if source == "file":
        return gold_by_prompt.get(row["instruction"])
    completions = row.get("completions") or []
    if source == "best_rated":
        rated = [c for c in completions if c.get("overall_score") is not None]
        return max(rated, key=lambda c: c["overall_score"])["response"] if rated else None
    if source.startswith("model:"):
        name = source.split(":", 1)[1]
        return next((c["response"] for c in completions if c.get("model") == name), None)
    raise DataError(f"data.gold_source={source!r}: expected best_rated, model:<name> or file")


def load_ultrafeedback(cfg: SeedDataConfig) -> tuple[list[dict], list[dict]]:
    """UltraFeedback prompts, shuffled with `data.seed`; the first `num_train` with a gold answer train,
    the next `num_validation` validate (the paper samples 18k of the 61k prompts)."""
    from datasets import load_dataset

    gold_by_prompt = {}
    if cfg.gold_source == "file":
        if not cfg.gold_file:
            raise DataError("data.gold_file is required when data.gold_source=file")
        gold_by_prompt = {
            r["prompt"]: r["gold"]
            for r in read_jsonl(resolve_path(cfg.gold_file), ("prompt", "gold"), "data.gold_file")
        }
    rows = load_dataset(cfg.hub_id, split=cfg.hub_split)
    order = list(range(len(rows)))
    random.Random(cfg.seed).shuffle(order)
    wanted = (cfg.num_train or len(rows)) + cfg.num_validation
    picked = []
    for i in order:
        row = rows[i]
        gold = gold_answer(row, cfg.gold_source, gold_by_prompt)
        if gold and row["instruction"].strip():
            picked.append({"id": f"uf-{i}", "prompt": row["instruction"], "gold": gold, "category": row.get("source")})
        if len(picked) == wanted:
            break
    split = len(picked) - cfg.num_validation
    return picked[:split], picked[split:]


LOADERS = {"jsonl": load_jsonl, "ultrafeedback": load_ultrafeedback}


def load(cfg: SeedDataConfig) -> tuple[list[dict], list[dict]]:
    if cfg.source not in LOADERS:
        raise DataError(f"data.source={cfg.source!r}: expected one of {sorted(LOADERS)}")
    train, validation = LOADERS[cfg.source](cfg)
    ids = [r["id"] for r in train + validation]
    if len(set(ids)) != len(ids):
        raise DataError(f"data ({cfg.name}): seed ids are not unique")
    if not train:
        raise DataError(f"data ({cfg.name}): the seed training split is empty")
    return train, validation


def run(out: Path, config: dict) -> dict:
    train, validation = load(SeedDataConfig(**config["data"]))
    write_jsonl(out / "train.jsonl", train)
    write_jsonl(out / "validation.jsonl", validation)
    return {"train": len(train), "validation": len(validation)}
