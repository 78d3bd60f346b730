"""Time to build the self-prompt generator's examples (2 own keywords + 1 noise keyword per seed item) on synthetic
seed prompts, today's `build_examples` against the former one, which rebuilt the list of every other item's words
for each item (quadratic in the seed size).

    python benchmarks/noise_keywords.py                     # 18k items (the paper's seed), the former on 200 of them
    python benchmarks/noise_keywords.py --items 2000 --old-items 2000

The former is timed on the first `--old-items` items (each against the whole seed set) and its time for all items
is extrapolated linearly: its cost per item is the same for every item of one seed set. Both draw from the same
random state, so their first `--old-items` examples must be identical; the script checks it.
"""

from __future__ import annotations

import argparse
import random
import string
import time

from synpo.config import KeywordConfig
from synpo.keywords import STOPWORDS, content_words
from synpo.stages.prompt_generator import build_examples


def synthetic_seed(items: int, vocabulary: int, words_per_prompt: int, seed: int) -> list[dict]:
    """Prompts of random lower-case words (all valid keywords) drawn from a Zipf-like vocabulary, as natural
    prompts share a few frequent words and many rare ones."""
    rng = random.Random(seed)
    vocab: list[str] = []
    while len(vocab) < vocabulary:
        word = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 9)))
        if word not in STOPWORDS:
            vocab.append(word)
    weights = [1 / (rank + 1) for rank in range(vocabulary)]
    return [
        {"id": f"s{i}", "prompt": " ".join(rng.choices(vocab, weights, k=words_per_prompt)), "gold": "-"}
        for i in range(items)
    ]


def former_examples(seed_rows: list[dict], kw: KeywordConfig, rng: random.Random, limit: int) -> list[dict]:
    """The former `build_examples` loop, on the first `limit` items: the list of other items' words per item."""
    words = [content_words(r["prompt"], kw.min_length) for r in seed_rows]
    examples = []
    for i, row in enumerate(seed_rows[:limit]):
        if len(words[i]) < kw.own:
            continue
        own = rng.sample(words[i], kw.own)
        others = [w for j, ws in enumerate(words) if j != i for w in ws if w not in words[i]]
        keywords = own + rng.sample(others, min(kw.noise, len(others)))
        rng.shuffle(keywords)
        examples.append({"id": row["id"], "keywords": keywords, "question": row["prompt"], "solution": row["gold"]})
    return examples


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=18000, help="seed items (default: 18000, the paper's)")
    p.add_argument("--old-items", type=int, default=200, help="items the former code is timed on (default: 200)")
    p.add_argument("--vocabulary", type=int, default=20000, help="distinct words (default: 20000)")
    p.add_argument("--words", type=int, default=20, help="words per prompt (default: 20)")
    args = p.parse_args()

    rows = synthetic_seed(args.items, args.vocabulary, args.words, seed=0)
    kw = KeywordConfig()
    start = time.perf_counter()
    new, _ = build_examples(rows, kw, random.Random(1))
    new_s = time.perf_counter() - start
    old_items = min(args.old_items, args.items)
    start = time.perf_counter()
    old = former_examples(rows, kw, random.Random(1), old_items)
    old_s = time.perf_counter() - start
    assert old == new[: len(old)], "the former and today's code drew different keywords"
    old_all = old_s * args.items / old_items
    print(f"{args.items} seed items, {sum(len(content_words(r['prompt'], 3)) for r in rows)} keyword occurrences")
    print(f"today's build_examples: {new_s:.2f} s for all {args.items} items")
    print(
        f"former build_examples: {old_s:.2f} s for {old_items} items, {old_s / old_items * 1000:.1f} ms per item, "
        f"~{old_all:.0f} s (~{old_all / 3600:.2f} h) extrapolated to {args.items}"
    )
    print(f"same examples on the first {len(old)} items: yes; speed-up ~{old_all / new_s:.0f}x")


if __name__ == "__main__":
    main()
