"""Each iteration, for `method.prompt_source=ultrafeedback`: the next slice of human-written prompts that are not seed
prompts (Table 6's "UltraFeedback" row: the same pipeline on prompts people wrote instead of generated ones)."""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

from synpo.config import PromptPoolConfig
from synpo.errors import DataError
from synpo.io import read_jsonl, resolve_path, write_jsonl


def pool(cfg: PromptPoolConfig) -> tuple[list[str], str]:
    """Candidate prompts in order, and where they come from (for error messages)."""
    if cfg.source == "hub":
        from datasets import load_dataset

        rows = load_dataset(cfg.hub_id, split=cfg.hub_split)
        if cfg.field not in rows.column_names:
            raise DataError(f"{cfg.hub_id}: no field {cfg.field!r} (method.prompt_pool.field); has {rows.column_names}")
        texts = rows[cfg.field]
        order = list(range(len(texts)))
        random.Random(cfg.shuffle_seed).shuffle(order)
        return [texts[i] for i in order], f"{cfg.hub_id} (method.prompt_pool.hub_id)"
    if cfg.source != "jsonl":
        raise DataError(f"method.prompt_pool.source={cfg.source!r}: expected hub or jsonl")
    return jsonl_prompts(cfg.file, "method.prompt_pool.file", "method.prompt_pool.source")


def jsonl_prompts(file: str | None, key: str, source_key: str) -> tuple[list[str], str]:
    """The `prompt` field of every row of the JSONL file config key `key` names, and where they come from."""
    if not file:
        raise DataError(f"{key} is required when {source_key}=jsonl")
    path = resolve_path(file)
    return [r["prompt"] for r in read_jsonl(path, ("prompt",), key)], f"{path} ({key})"


def fresh_slice(texts: Iterable[str], seen: set[str], offset: int, n: int, source: str, iteration: int) -> tuple:
    """Prompts `offset` .. `offset + n` of `texts` once the `seen` ones and repeats are left out, and how many unused
    prompts the pool has; no prompt left is an error naming the source."""
    seen, fresh = set(seen), []
    for text in texts:
        if text.strip() and text.strip() not in seen:
            seen.add(text.strip())
            fresh.append(text)
    picked = fresh[offset : offset + n]
    if not picked:
        raise DataError(
            f"{source}: no prompt left for iteration {iteration} (field 'prompt'): {len(fresh)} unused non-seed "
            f"prompts, {offset} taken by earlier iterations; lower method.prompts_per_iteration"
        )
    return picked, len(fresh)


def run(out: Path, config: dict, seed: Path) -> dict:
    texts, source = pool(PromptPoolConfig(**config["pool"]))
    seen = {r["prompt"].strip() for split in ("train", "validation") for r in read_jsonl(seed / f"{split}.jsonl")}
    t, n = config["iteration"], config["n"]
    picked, size = fresh_slice(texts, seen, (t - 1) * n, n, source, t)
    write_jsonl(out / "prompts.jsonl", ({"id": f"uf-it{t}-{i:06d}", "prompt": p} for i, p in enumerate(picked)))
    return {"prompts": len(picked), "requested": n, "pool": size}
