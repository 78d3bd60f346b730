"""SPA step 0 data: the labelled seed pairs, normalised to `seed.jsonl` rows of {"id", "prompt", "chosen", "rejected"}.

The paper's seed is the first 2,000 pairs of `argilla/ultrafeedback-binarized-preferences-cleaned` shuffled with
seed 42 (about 3.3% of its labels); the demo's is `synpo/data/spa_seed_demo`.
"""

from __future__ import annotations

from pathlib import Path

from synpo.config import SPADataConfig
from synpo.errors import DataError
from synpo.io import read_jsonl, resolve_path, write_jsonl

FIELDS = ("id", "prompt", "chosen", "rejected")


def shuffled_hub_rows(cfg: SPADataConfig):
    """The hub set in the paper's order: shuffled with `shuffle_seed` (seed rows first, then the prompt pool)."""
    from datasets import load_dataset

    return load_dataset(cfg.hub_id, split=cfg.hub_split).shuffle(seed=cfg.shuffle_seed)


def last_message(messages, where: str) -> str:
    """The assistant answer of one of the hub set's chosen / rejected message lists."""
    if not isinstance(messages, list) or not messages or not str(messages[-1].get("content", "")).strip():
        raise DataError(f"{where}: expected a non-empty list of chat messages ending with the answer")
    return messages[-1]["content"]


def hub_pairs(rows, hub_id: str, limit: int | None, id_of) -> list[dict]:
    """The first `limit` rows (None = all) of a hub set of chat-message pairs (`prompt`, `chosen`, `rejected`) as
    {"id", "prompt", "chosen", "rejected"} rows; a missing field or an empty answer names the set, row and field."""
    missing = [f for f in ("prompt", "chosen", "rejected") if f not in rows.column_names]
    if missing:
        raise DataError(f"{hub_id} (method.data.hub_id): no field {missing[0]!r}; columns: {rows.column_names}")
    n = len(rows) if limit is None else min(limit, len(rows))
    return [
        {
            "id": id_of(i, row),
            "prompt": row["prompt"],
            "chosen": last_message(row["chosen"], f"{hub_id} row {i} field 'chosen'"),
            "rejected": last_message(row["rejected"], f"{hub_id} row {i} field 'rejected'"),
        }
        for i, row in enumerate(rows.select(range(n)))
    ]


def hub_seed(cfg: SPADataConfig) -> list[dict]:
    return hub_pairs(shuffled_hub_rows(cfg), cfg.hub_id, cfg.seed_pairs, lambda i, row: f"seed-{i}")


def jsonl_seed(cfg: SPADataConfig) -> list[dict]:
    if not cfg.seed_file:
        raise DataError("method.data.seed_file is required when method.data.source=jsonl")
    return read_jsonl(resolve_path(cfg.seed_file), FIELDS, "method.data.seed_file")[: cfg.seed_pairs]


LOADERS = {"hub": hub_seed, "jsonl": jsonl_seed}


def load(cfg: SPADataConfig) -> list[dict]:
    if cfg.source not in LOADERS:
        raise DataError(f"method.data.source={cfg.source!r}: expected one of {sorted(LOADERS)}")
    rows = LOADERS[cfg.source](cfg)
    if not rows:
        raise DataError(f"method.data ({cfg.source}): the seed has no preference pair")
    if len({r["id"] for r in rows}) != len(rows):
        raise DataError(f"method.data ({cfg.source}): seed ids are not unique")
    return [{k: r[k] for k in FIELDS} for r in rows]


def run(out: Path, config: dict) -> dict:
    rows = load(SPADataConfig(**config["data"]))
    write_jsonl(out / "seed.jsonl", rows)
    return {"seed_pairs": len(rows)}
