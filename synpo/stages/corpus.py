"""The keyword corpus, materialised once as `paragraphs.jsonl` ({"text"} rows)."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

from synpo.config import CorpusConfig
from synpo.errors import DataError
from synpo.io import read_jsonl, resolve_path, write_jsonl


def paragraphs(cfg: CorpusConfig) -> list[str]:
    """The paragraphs of `corpus.min_words` words or more (at most `corpus.max_paragraphs`); none is an error naming
    the file or hub set."""
    if cfg.source == "jsonl":
        path = resolve_path(cfg.file)
        where = f"{path} (corpus.file)"
        texts = (r[cfg.text_field] for r in read_jsonl(path, (cfg.text_field,), "corpus.file"))
    else:
        from datasets import load_dataset

        where = f"{cfg.hub_id} (corpus.hub_id)"
        stream = load_dataset(cfg.hub_id, split=cfg.hub_split, streaming=True)
        texts = (r[cfg.text_field] for r in stream)
    kept = (t.strip() for t in texts if len(t.split()) >= cfg.min_words)
    found = list(islice(kept, cfg.max_paragraphs))
    if not found:
        raise DataError(f"{where}: no paragraph has corpus.min_words={cfg.min_words} words")
    return found


def run(out: Path, config: dict) -> dict:
    texts = paragraphs(CorpusConfig(**config["corpus"]))
    write_jsonl(out / "paragraphs.jsonl", ({"text": t} for t in texts))
    return {"paragraphs": len(texts)}
