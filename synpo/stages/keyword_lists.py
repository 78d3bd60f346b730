"""Each iteration: draw keyword lists from the corpus for the generator (paper Sec. 2.1)."""

from __future__ import annotations

import random
from pathlib import Path

from synpo.config import KeywordConfig
from synpo.io import read_jsonl, write_jsonl
from synpo.keywords import draw_keyword_lists


def run(out: Path, config: dict, corpus: Path) -> dict:
    kw = KeywordConfig(**config["keywords"])
    texts = [r["text"] for r in read_jsonl(corpus / "paragraphs.jsonl")]
    lists, counts = draw_keyword_lists(texts, config["n"], kw.per_list, kw.min_length, random.Random(config["seed"]))
    write_jsonl(out / "keywords.jsonl", ({"id": f"kw-{i:06d}", "keywords": k} for i, k in enumerate(lists)))
    return dict(counts)
