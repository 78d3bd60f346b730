"""Keyword lists, drawn as the paper draws them from RefinedWeb: a few random words of one paragraph,
with lists that contain a stopword or a personal name excluded.

The paper does not say how names are recognised; here a capitalised word that does not start a sentence
counts as a (possible) name, a conservative rule that also drops other proper nouns.
"""

from __future__ import annotations

import random
import re
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from collections.abc import Sequence

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*[A-Za-z]|[A-Za-z]")
_SENTENCE_END = re.compile(r"[.!?:;]\s*$")

STOPWORDS = frozenset(
    """a about above after again against all almost also am among an and any are aren't around as at be
    because been before being below between both but by can can't cannot could couldn't did didn't do does
    doesn't doing don't down during each either else even ever every few for from further get gets got had
    hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself him himself his how
    how's however i i'd i'll i'm i've if in into is isn't it it's its itself just let's like made make many
    may me might more most much must mustn't my myself neither never no nor not now of off often on once one
    only or other ought our ours ourselves out over own per quite rather really same say says shall shan't she
    she'd she'll she's should shouldn't since so some still such than that that's the their theirs them
    themselves then there there's these they they'd they'll they're they've this those though through thus
    to too toward towards under until up upon us use used uses using very via was wasn't we we'd we'll we're
    we've well were weren't what what's when when's where where's whether which while who who's whom whose why
    why's will with within without won't would wouldn't yet you you'd you'll you're you've your yours yourself
    yourselves""".split()
)


def tokens(text: str) -> list[tuple[str, bool]]:
    """Words of `text`, each with whether it starts a sentence."""
    out = []
    for m in _WORD.finditer(text):
        before = text[: m.start()]
        out.append((m.group(), not before.strip() or bool(_SENTENCE_END.search(before))))
    return out


def rejection(word: str, sentence_start: bool, min_length: int) -> str | None:
    """Why `word` cannot be a keyword, or None."""
    if word.lower() in STOPWORDS:
        return "stopword"
    if len(word) < min_length:
        return "too_short"
    if word[0].isupper() and not sentence_start:
        return "name"
    return None


def content_words(text: str, min_length: int) -> list[str]:
    """Distinct lower-cased words of `text` that may serve as keywords, in order of appearance."""
    seen: dict[str, None] = {}
    for word, start in tokens(text):
        if rejection(word, start, min_length) is None:
            seen.setdefault(word.lower(), None)
    return list(seen)


def draw_keyword_lists(
    paragraphs: Sequence[str],
    n: int,
    per_list: int,
    min_length: int,
    rng: random.Random,
    max_attempts: int | None = None,
) -> tuple[list[list[str]], Counter]:
    """Draw up to `n` lists of `per_list` random words, one paragraph per attempt (cycling through a
    shuffled corpus); a list is excluded when one of its words is a stopword, a name or too short."""
    counts: Counter = Counter()
    lists: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()
    order = list(range(len(paragraphs)))
    rng.shuffle(order)
    max_attempts = max_attempts or 50 * n
    for attempt in range(max_attempts):
        if len(lists) >= n or not order:
            break
        words = tokens(paragraphs[order[attempt % len(order)]])
        counts["drawn"] += 1
        if len(words) < per_list:
            counts["rejected_too_few_words"] += 1
            continue
        picked = rng.sample(words, per_list)
        reasons = [r for w, s in picked if (r := rejection(w, s, min_length))]
        if reasons:
            counts[f"rejected_{reasons[0]}"] += 1
            continue
        keywords = [w.lower() for w, _ in picked]
        if len(set(keywords)) < per_list or tuple(sorted(keywords)) in seen:
            counts["rejected_duplicate"] += 1
            continue
        seen.add(tuple(sorted(keywords)))
        lists.append(keywords)
    counts["kept"] = len(lists)
    return lists, counts


class NoiseWords:
    """The generator's noise keywords: words of the other seed prompts, drawn in proportion to how many other
    prompts contain them, never one of the item's own words.

    `draw` gives exactly `rng.sample([w for ws in words for w in ws if w not in own], k)` (the same words from the
    same random state: `random.sample` draws indices from the population's length only) without building that list
    for every item, which made 18k seed items quadratic: the indices are drawn in `range(n)` and the i-th kept word
    is found in the flat list of all words by a binary search over the positions the own words take there.
    """

    def __init__(self, words: list[list[str]]):
        self.flat = [w for ws in words for w in ws]
        self.positions: dict[str, list[int]] = defaultdict(list)
        for p, w in enumerate(self.flat):
            self.positions[w].append(p)

    def draw(self, own: list[str], k: int, rng: random.Random) -> list[str]:
        excluded = [self.positions[w] for w in set(own) if w in self.positions]
        n = len(self.flat) - sum(map(len, excluded))
        return [self.flat[self._kept(i, excluded)] for i in rng.sample(range(n), min(k, n))]

    def _kept(self, i: int, excluded: list[list[int]]) -> int:
        """Position in `flat` of the i-th word (from 0) that is not excluded."""

        def kept_through(p: int) -> int:
            return p + 1 - sum(bisect_right(e, p) for e in excluded)

        return bisect_left(range(len(self.flat)), i + 1, key=kept_through)
