"""The keyword corpus, materialised once as `paragraphs.jsonl` ({"text"} rows)."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

from synpo.config import CorpusConfig
from synpo.errors import DataError
from synpo.io import read_jsonl, resolve_path, write_jsonl


def paragraphs(cfg: CorpusConfig) -> list[str]:
    if cfg.source == "jsonl":
        if not cfg.file:
            raise DataError("corpus.file is required when corpus.source=jsonl")
        texts = (r[cfg.text_field] for r in read_jsonl(resolve_path(cfg.file), (cfg.text_field,)))
    elif cfg.source == "hub":
        from datasets import load_dataset

        stream = load_dataset(cfg.hub_id, split=cfg.hub_split, streaming=True)
        texts = (r[cfg.text_field] for r in stream)
    else:
        raise DataError(f"corpus.source={cfg.source!r}: expected jsonl or hub")
    kept = (t.strip() for t in texts if len(t.split()) >= cfg.min_words)
    return list(islice(kept, cfg.max_paragraphs))


def run(out: Path, config: dict) -> dict:
    texts = paragraphs(CorpusConfig(**config["corpus"]))
    if not texts:
        raise DataError(f"corpus ({config['corpus']['name']}): no paragraph has corpus.min_words words")
    write_jsonl(out / "paragraphs.jsonl", ({"text": t} for t in texts))
    return {"paragraphs": len(texts)}
