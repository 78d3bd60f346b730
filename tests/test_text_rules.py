"""Keyword drawing, prompt parsing and pair filters: the rules the paper states or leaves to us."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter

import pytest

from synpo.config import KeywordConfig
from synpo.filters import pair_verdict, repetition_ratio
from synpo.keywords import NoiseWords, content_words, draw_keyword_lists
from synpo.stages.prompt_generator import build_examples
from synpo.stages.response_improver import select
from synpo.templates import QUESTION_HEADER, parse_question, question_prompt


def test_keyword_lists_exclude_stopwords_and_names():
    paragraphs = [
        "Volcanic basalt cools quickly near the ocean, forming glassy obsidian ridges.",
        "Yesterday Margaret Thompson visited the harbour with the engineers.",
    ]
    lists, counts = draw_keyword_lists(paragraphs, n=20, per_list=3, min_length=3, rng=random.Random(0))
    assert lists and all(len(k) == 3 for k in lists)
    for words in lists:
        assert not {"the", "with"} & set(words)
        assert "margaret" not in words and "thompson" not in words
    assert counts["kept"] == len(lists) and counts["drawn"] > counts["kept"]
    assert counts["rejected_stopword"] > 0


def test_content_words_treat_mid_sentence_capitals_as_names():
    words = content_words("Engineers in Paris measured the bridge. Bridges sway.", 3)
    assert "paris" not in words and "engineers" in words and "bridges" in words


def test_generator_examples_use_two_own_keywords_and_one_noise_keyword():
    seed = [
        {"id": "a", "prompt": "Explain photosynthesis in desert plants", "gold": "..."},
        {"id": "b", "prompt": "Write a sonnet about autumn rain", "gold": "..."},
        {"id": "c", "prompt": "Compare quicksort and mergesort complexity", "gold": "..."},
    ]
    examples, counts = build_examples(seed, KeywordConfig(), random.Random(1))
    assert counts["examples"] == 3
    for e, row in zip(examples, seed, strict=True):
        own = set(content_words(row["prompt"], 3))
        assert len(e["keywords"]) == 3 and len(own & set(e["keywords"])) == 2
        assert e["question"] == row["prompt"]


def _former_noise(words: list[list[str]], i: int, k: int, rng: random.Random) -> list[str]:
    """The noise draw `build_examples` made before NoiseWords: a list of every other item's words, per item."""
    others = [w for j, ws in enumerate(words) if j != i for w in ws if w not in words[i]]
    return rng.sample(others, min(k, len(others)))


@pytest.mark.parametrize("k", [1, 2, 3, 30])
def test_noise_words_draw_what_the_former_list_drew(k):
    """Same words from the same random state, on seed sets with shared words, short prompts and small pools (so
    `random.sample` takes both of its paths)."""
    gen = random.Random(k)
    vocab = [f"w{n}" for n in range(40)]
    for trial in range(30):
        words = [list(dict.fromkeys(gen.choices(vocab[: gen.randint(3, 40)], k=gen.randint(0, 8)))) for _ in range(12)]
        noise = NoiseWords(words)
        for i in range(len(words)):
            old_rng, new_rng = random.Random(trial * 100 + i), random.Random(trial * 100 + i)
            assert noise.draw(words[i], k, new_rng) == _former_noise(words, i, k, old_rng)
            assert new_rng.getstate() == old_rng.getstate()


def test_noise_words_follow_the_other_prompts_word_counts():
    """P(word) = (prompts other than the item's that contain it) / (all such occurrences); own words never."""
    words = [["basalt", "ocean"], ["ridge", "ocean", "glass"], ["ridge", "lava"], ["ridge", "basalt"]]
    noise, rng = NoiseWords(words), random.Random(0)
    drawn = Counter(w for _ in range(6000) for w in noise.draw(words[0], 1, rng))
    assert set(drawn) == {"ridge", "glass", "lava"}  # basalt and ocean are item 0's own words
    assert drawn["ridge"] / 6000 == pytest.approx(3 / 5, abs=0.03)
    assert drawn["glass"] / 6000 == pytest.approx(1 / 5, abs=0.03)


def test_generator_examples_of_18k_seed_items_take_seconds():
    """The paper's 18k seed items (here 20 distinct words each from a 20k vocabulary); the former code needed ~25
    minutes on this machine, today's ~3 s (benchmarks/noise_keywords.py)."""
    script = """
import random, time
from synpo.config import KeywordConfig
from synpo.stages.prompt_generator import build_examples
rng = random.Random(0)
vocab = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=8)) for _ in range(20000)]
rows = [{"id": str(i), "prompt": " ".join(rng.sample(vocab, 20)), "gold": "-"} for i in range(18000)]
start = time.perf_counter()
examples, counts = build_examples(rows, KeywordConfig(), random.Random(1))
assert counts["examples"] == 18000
print(time.perf_counter() - start)
"""
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240, check=True)
    except subprocess.TimeoutExpired:
        pytest.fail("building the generator's examples of 18k seed items took more than 4 minutes")
    assert float(done.stdout) < 120  # ~3 s on 2 idle cores, 10-20 s under a load of 8


@pytest.mark.parametrize(
    "text, question, reason",
    [
        ("<question> What is entropy? </question>", "What is entropy?", "ok"),
        ("<question> What is entropy?", "What is entropy?", "ok"),  # cut at the stop string
        ("What is entropy?", None, "no_question_tag"),
        ("<question>   </question>", None, "empty_question"),
        (f"<question> {QUESTION_HEADER} </question>", None, "copies_template"),
    ],
)
def test_parse_question(text, question, reason):
    assert parse_question(text) == (question, reason)


def test_question_template_lists_the_keywords_and_ends_with_the_header():
    prompt = question_prompt(["tide", "lunar", "harbor"])
    assert "## Given Keywords\ntide, lunar, harbor" in prompt
    assert prompt.endswith(QUESTION_HEADER)


def test_repetition_ratio():
    assert repetition_ratio("a b c d e f") == 0
    assert repetition_ratio("go go go go go go go go") > 0.8
    assert repetition_ratio("short") == 0


@pytest.mark.parametrize(
    "gap, chosen, rejected, verdict",
    [
        (0.3, "a fine detailed answer", "a worse answer", "kept"),
        (0.1, "a fine detailed answer", "a worse answer", "below_threshold"),
        (0.2, "a fine detailed answer", "a worse answer", "below_threshold"),  # strictly greater
        (0.9, "same", "same", "identical"),
        (0.9, "", "x", "empty_answer"),
        (0.9, "loop " * 20, "a worse answer", "repetition"),
        (None, "a fine detailed answer", "a worse answer", "unscored"),  # a judge's verdict did not parse
    ],
)
def test_pair_verdict(gap, chosen, rejected, verdict):
    assert pair_verdict(gap, chosen, rejected, threshold=0.2, max_repetition=0.5, ngram=3) == verdict


def test_improver_keeps_seed_items_where_gold_beats_the_answer_by_the_threshold():
    seed = [{"id": i, "prompt": f"q{i}", "gold": f"g{i}"} for i in "abc"]
    answers = [{"id": i, "prompt": f"q{i}", "answer": f"y{i}"} for i in "abc"]
    gaps = [{"id": "a", "gap": 0.7}, {"id": "b", "gap": 0.1}, {"id": "c", "gap": None}]
    kept = select(seed, answers, gaps, threshold=0.1)
    assert [(k["id"], k["gold"], k["answer"]) for k in kept] == [("a", "ga", "ya")]
