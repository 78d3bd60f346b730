"""The keyword corpus (paper App. C.1: "randomly sampled 1 million paragraphs" of RefinedWeb): documents split into
paragraphs, a uniform sample of them taken from the stream without holding it, keyword lists from one paragraph."""

from __future__ import annotations

import json
import random
import tracemalloc
from collections import Counter

from synpo.config import CorpusConfig
from synpo.io import read_jsonl
from synpo.keywords import content_words
from synpo.stages import corpus, keyword_lists


def _words(rng: random.Random, prefix: str, n: int = 24) -> str:
    return " ".join(f"{prefix}{rng.choice('abcdefghij')}{rng.choice('klmnopqrst')}x" for _ in range(n))


def _write_corpus(path, documents: list[str], field: str = "text") -> str:
    path.write_text("".join(json.dumps({field: d}) + "\n" for d in documents))
    return str(path)


def _config(file: str, **corpus_keys) -> dict:
    return {"corpus": {"name": "test", "source": "jsonl", "file": file, "min_words": 20, **corpus_keys}}


def test_documents_are_split_into_paragraphs_and_each_list_comes_from_one(tmp_path):
    rng = random.Random(0)
    # Two paragraphs per document with disjoint words ("p..." and "q..."), and a short heading that is no candidate.
    docs = [f"Heading {d}\n{_words(rng, 'p')}\n\n  {_words(rng, 'q')}" for d in range(30)]
    counts = corpus.run(tmp_path / "corpus", _config(_write_corpus(tmp_path / "docs.jsonl", docs)))
    assert counts == {"documents": 30, "candidate_paragraphs": 60, "paragraphs": 60}
    texts = [r["text"] for r in read_jsonl(tmp_path / "corpus" / "paragraphs.jsonl")]
    assert all("\n" not in t and len(set(w[0] for w in t.split())) == 1 for t in texts)

    config = {"keywords": {"per_list": 3, "min_length": 3}, "n": 50, "seed": 0}
    keyword_lists.run(tmp_path / "keywords", config, tmp_path / "corpus")
    paragraph_words = [set(content_words(t, 3)) for t in texts]
    lists = [r["keywords"] for r in read_jsonl(tmp_path / "keywords" / "keywords.jsonl")]
    assert len(lists) == 50
    assert all(any(set(k) <= words for words in paragraph_words) for k in lists)


def test_the_sample_is_uniform_over_the_whole_stream(tmp_path):
    picks: Counter = Counter()
    for trial in range(2000):
        picks.update(corpus.reservoir(range(200), 20, random.Random(trial)))
    # Each of 200 items is kept with probability 20/200 = 0.1: 200 times in 2000 trials (sd ~13).
    assert max(abs(picks[i] - 200) for i in range(200)) < 70
    assert abs(sum(picks[i] for i in range(100, 200)) - 20000) < 600

    rng = random.Random(1)
    docs = [_words(rng, "p") for _ in range(200)]
    config = _config(_write_corpus(tmp_path / "docs.jsonl", docs), max_paragraphs=20, seed=3)
    assert corpus.run(tmp_path / "corpus", config)["paragraphs"] == 20
    kept = {r["text"] for r in read_jsonl(tmp_path / "corpus" / "paragraphs.jsonl")}
    assert kept <= set(docs) and kept != set(docs[:20]) and kept & set(docs[100:])


def test_paragraphs_split_at_line_breaks_in_time_linear_in_whitespace_runs():
    """The old regular expression split took 26 s on a run of 8k spaces (cubic backtracking); the split is the same."""
    import re
    import time

    text = " Intro line \r\n\n  \t second  para \n\n\n third\t\n"
    assert corpus.split_paragraphs(text) == re.split(r"\s*\n\s*", text.strip())
    start = time.perf_counter()
    assert corpus.split_paragraphs("a" + " " * 200_000 + "b\n c") == ["a" + " " * 200_000 + "b", "c"]
    assert time.perf_counter() - start < 1.0


def test_the_corpus_is_streamed_not_held(tmp_path):
    rng = random.Random(2)
    docs = [f"{_words(rng, 'p', 60)}\n{_words(rng, 'q', 60)}" for _ in range(2000)]  # 1.2 MB, 4000 paragraphs
    config = _config(_write_corpus(tmp_path / "docs.jsonl", docs), max_paragraphs=5)
    tracemalloc.start()
    try:
        corpus.run(tmp_path / "corpus", config)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (tmp_path / "docs.jsonl").stat().st_size > 1_200_000
    assert peak < 200_000, f"peak {peak} bytes: the corpus was held in memory"


def test_a_hub_stream_is_shuffled_and_cut_at_max_documents(tmp_path):
    """`source=hub` through `datasets`' streaming loader, on a local dataset folder standing in for RefinedWeb."""
    folder = tmp_path / "refinedweb"
    folder.mkdir()
    docs = [f"document {i:03d}" for i in range(300)]
    _write_corpus(folder / "train.jsonl", docs, field="content")
    cfg = CorpusConfig(name="hub", source="hub", hub_id=str(folder), text_field="content", shuffle_buffer=100)
    streamed = list(corpus.documents(cfg))
    assert sorted(streamed) == docs and streamed != docs
    assert len(list(corpus.documents(CorpusConfig(**{**vars(cfg), "max_documents": 7})))) == 7


def test_keyword_lists_read_the_corpus_by_offset_with_the_same_draws(tmp_path):
    """The stage draws from `paragraphs.jsonl` line by line (JsonlField) instead of holding it: the same lists as
    from the whole list, and a peak allocation far below the corpus's size (benchmarks/scale_rehearsal.py)."""
    import tracemalloc

    from synpo.io import write_jsonl
    from synpo.keywords import draw_keyword_lists

    rng = random.Random(1)
    texts = [_words(rng, "p", 200) for _ in range(3000)]
    write_jsonl(tmp_path / "corpus" / "paragraphs.jsonl", ({"text": t} for t in texts))
    config = {"keywords": {"per_list": 3, "min_length": 3}, "n": 20, "seed": 3}
    tracemalloc.start()
    keyword_lists.run(tmp_path / "keywords", config, tmp_path / "corpus")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    expected, _ = draw_keyword_lists(texts, 20, 3, 3, random.Random(3))
    assert [r["keywords"] for r in read_jsonl(tmp_path / "keywords" / "keywords.jsonl")] == expected
    assert peak < (tmp_path / "corpus" / "paragraphs.jsonl").stat().st_size / 10
