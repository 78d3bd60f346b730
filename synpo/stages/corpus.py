"""The keyword corpus: paragraphs sampled at random from a stream of documents, materialised once as
`paragraphs.jsonl` ({"text"} rows).

The paper draws its keyword lists from "randomly sampled 1 million paragraphs" of RefinedWeb. Documents are split
into paragraphs at line breaks; a paragraph of at least `min_words` words is a candidate, and `max_paragraphs` of
the candidates are kept by reservoir sampling as the stream goes by, each candidate equally likely: memory holds the
sample, never the corpus. A hub stream is shuffled first (`datasets` shuffles its shards' order and a buffer of
`shuffle_buffer` documents) so that the `max_documents` read come from all over the dataset.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

from synpo.config import CorpusConfig
from synpo.errors import DataError
from synpo.io import iter_jsonl, resolve_path, write_jsonl


def documents(cfg: CorpusConfig) -> Iterator[str]:
    """The corpus' texts, one at a time, at most `max_documents` of them."""
    if cfg.source == "jsonl":
        if not cfg.file:
            raise DataError("corpus.file is required when corpus.source=jsonl")
        texts = (r[cfg.text_field] for r in iter_jsonl(resolve_path(cfg.file), (cfg.text_field,), "corpus.file"))
    elif cfg.source == "hub":
        from datasets import load_dataset

        stream = load_dataset(cfg.hub_id, split=cfg.hub_split, streaming=True)
        texts = (r[cfg.text_field] for r in stream.shuffle(seed=cfg.seed, buffer_size=cfg.shuffle_buffer))
    else:
        raise DataError(f"corpus.source={cfg.source!r}: expected jsonl or hub")
    return islice(texts, cfg.max_documents)


def split_paragraphs(text: str) -> list[str]:
    """The text's non-blank lines, stripped. Not a regular expression split at whitespace around line breaks: that
    backtracks over every run of whitespace without a line break, in a time cubic in its length (8k spaces took
    26 s; benchmarks/scale_rehearsal.py)."""
    return [line for line in (raw.strip() for raw in text.split("\n")) if line]


def paragraphs(texts: Iterable[str], min_words: int, counts: Counter) -> Iterator[str]:
    """The paragraphs of at least `min_words` words of each text; `counts` tallies documents and candidates."""
    for text in texts:
        counts["documents"] += 1
        for paragraph in split_paragraphs(text):
            if len(paragraph.split()) >= min_words:
                counts["candidate_paragraphs"] += 1
                yield paragraph


def reservoir(items: Iterable[str], k: int, rng: random.Random) -> list[str]:
    """k items drawn uniformly without replacement from a stream of unknown length (Algorithm R)."""
    sample: list[str] = []
    for n, item in enumerate(items):
        if n < k:
            sample.append(item)
        elif (j := rng.randrange(n + 1)) < k:
            sample[j] = item
    return sample


def _none_found(cfg: CorpusConfig) -> DataError:
    where = f"{resolve_path(cfg.file)} (corpus.file)" if cfg.source == "jsonl" else f"{cfg.hub_id} (corpus.hub_id)"
    return DataError(f"{where}: no paragraph has corpus.min_words={cfg.min_words} words")


def check(cfg: CorpusConfig) -> None:
    """The start-up's look at a local corpus file: every record parses and some paragraph is long enough."""
    if not sum(1 for _ in paragraphs(documents(cfg), cfg.min_words, Counter())):
        raise _none_found(cfg)


def run(out: Path, config: dict) -> dict:
    cfg = CorpusConfig(**config["corpus"])
    counts: Counter = Counter()
    candidates = paragraphs(documents(cfg), cfg.min_words, counts)
    if cfg.max_paragraphs is not None:
        candidates = reservoir(candidates, cfg.max_paragraphs, random.Random(cfg.seed))
    written = write_jsonl(out / "paragraphs.jsonl", ({"text": t} for t in candidates))
    if not written:
        raise _none_found(cfg)
    return {**counts, "paragraphs": written}
