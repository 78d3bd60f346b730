"""Each iteration: draw keyword lists from the corpus for the generator (paper Sec. 2.1)."""

from __future__ import annotations

import random
from pathlib import Path

from synpo.config import KeywordConfig
from synpo.io import JsonlField, write_jsonl
from synpo.keywords import draw_keyword_lists


def run(out: Path, config: dict, corpus: Path) -> dict:
    kw = KeywordConfig(**config["keywords"])
    # Read by line offset, not held: the paper's corpus is 1M paragraphs (~1 GB as Python strings), of which the
    # draws read about 2 per list kept.
    with JsonlField(corpus / "paragraphs.jsonl", "text") as texts:
        lists, counts = draw_keyword_lists(
            texts, config["n"], kw.per_list, kw.min_length, random.Random(config["seed"])
        )
    write_jsonl(out / "keywords.jsonl", ({"id": f"kw-{i:06d}", "keywords": k} for i, k in enumerate(lists)))
    return dict(counts)
