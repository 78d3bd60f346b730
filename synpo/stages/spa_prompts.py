"""SPA, each iteration: the new prompts pi(i-1) answers (labels unused), the next slice of the prompt pool.

The pool is the hub set after its seed rows (paper: the next 8k / 20k / 30k prompts for iterations 1 / 2 / 3), or
the prompts of `method.data.prompt_file`; seed prompts and repeats are left out.
"""

from __future__ import annotations

from pathlib import Path

from synpo.config import SPADataConfig
from synpo.io import read_jsonl, write_jsonl
from synpo.stages.prompt_pool import fresh_slice, jsonl_prompts
from synpo.stages.spa_seed import shuffled_hub_rows


def pool(cfg: SPADataConfig) -> tuple[list[str], str]:
    """Candidate prompts in order, and where they come from (for error messages)."""
    if cfg.source == "hub":
        rows = shuffled_hub_rows(cfg)
        start = len(rows) if cfg.seed_pairs is None else cfg.seed_pairs
        return rows.select(range(min(start, len(rows)), len(rows)))["prompt"], f"{cfg.hub_id} (method.data.hub_id)"
    return jsonl_prompts(cfg.prompt_file, "method.data.prompt_file", "method.data.source")


def run(out: Path, config: dict, seed: Path) -> dict:
    texts, source = pool(SPADataConfig(**config["data"]))
    seen = {r["prompt"].strip() for r in read_jsonl(seed / "seed.jsonl")}
    start, n = config["offset"], config["n"]
    picked, size = fresh_slice(texts, seen, start, n, source, config["iteration"])
    write_jsonl(
        out / "prompts.jsonl",
        ({"id": f"it{config['iteration']}-{start + i:06d}", "prompt": p} for i, p in enumerate(picked)),
    )
    return {"prompts": len(picked), "requested": n, "pool": size}
