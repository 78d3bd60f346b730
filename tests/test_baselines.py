"""The paper's baselines and Table 7 ablations, rule by rule: Sampling-Ranking's best and worst of n by the scorer,
Self-Rewarding's additive score and its refusal of unparsable verdicts, the judge examples of its SFT, the seed-only
pairs, and the preference data loaders."""

from __future__ import annotations

import pytest

from synpo.config import PreferenceDataConfig, RewardConfig
from synpo.errors import DataError
from synpo.io import read_jsonl, write_json, write_jsonl
from synpo.rewards import REWARDS, Reward, make_reward, register_reward
from synpo.stages import best_worst_pairs, gold_pairs, judge_samples, preference_data, score_samples, seed_sft
from synpo.templates import parse_additive_score

PROMPTS = ["Name a colour.", "Say hello."]
SAMPLES = [["red", "a deep blue, like the sea", "green!", "teal"], ["hi", "hello there, how are you?", "hey", "yo"]]


class Length(Reward):
    """Pointwise: longer is better."""

    def __init__(self, cfg=None, m0_path=None, system_prompt=None):
        pass

    def score(self, prompts, answers):
        return [float(len(a)) for a in answers]


class PairwiseLength(Reward):
    """Pairwise only (like PairRM): the gap is the length difference; pairs with a 'yo' in them do not parse."""

    def __init__(self, cfg=None, m0_path=None, system_prompt=None):
        pass

    def gaps(self, prompts, chosen, rejected):
        return [
            {"gap": None if "yo" in (c, r) else float(len(c) - len(r))} for c, r in zip(chosen, rejected, strict=True)
        ]


@pytest.fixture
def samples_dir(tmp_path):
    folder = tmp_path / "samples"
    rows = [
        {"id": f"p{i}", "prompt": p, "answer": s[0], "samples": s}
        for i, (p, s) in enumerate(zip(PROMPTS, SAMPLES, strict=True))
    ]
    write_jsonl(folder / "answers.jsonl", rows)
    return folder


def test_pointwise_sample_scores_are_the_rewards_scores():
    assert Length().sample_scores(PROMPTS, SAMPLES) == [[len(a) for a in s] for s in SAMPLES]


def test_pairwise_sample_scores_are_mean_gaps_of_a_round_robin_without_the_unparsed_games():
    scores = PairwiseLength().sample_scores(PROMPTS, SAMPLES)
    first = [len(a) for a in SAMPLES[0]]
    assert scores[0] == pytest.approx([sum(x - y for y in first) / 3 for x in first])  # the x - x term is 0
    # 'yo' takes part in no scored game: no score; the others are ranked among themselves.
    assert scores[1][3] is None
    assert max(range(3), key=lambda i: scores[1][i]) == 1 and min(range(3), key=lambda i: scores[1][i]) == 0


@pytest.mark.parametrize("reward", [Length, PairwiseLength])
def test_sampling_ranking_pairs_the_best_and_the_worst_of_n_by_the_scorer(reward, samples_dir, tmp_path):
    register_reward("test_length")(reward)
    try:
        m0 = tmp_path / "m0"
        write_json(m0 / "model.json", {"path": "unused"})
        config = {"reward": {"name": "test_length"}, "system_prompt": None}
        counts = score_samples.run(tmp_path / "scores", config, samples=samples_dir, m0=m0)
    finally:
        REWARDS.pop("test_length")
    assert counts["samples"] == 8
    config = {"iteration": 1, "per_iteration": 10, "seed": 0}
    best_worst_pairs.run(tmp_path / "pairs", config, samples=samples_dir, scores=tmp_path / "scores")
    pairs = {p["id"]: p for p in read_jsonl(tmp_path / "pairs" / "preference_set.jsonl")}
    assert (pairs["p0"]["chosen"], pairs["p0"]["rejected"]) == ("a deep blue, like the sea", "red")
    # "hi" and "yo" are equally short (the first of equals is taken); the pairwise judge could not place "yo" at all.
    assert (pairs["p1"]["chosen"], pairs["p1"]["rejected"]) == ("hello there, how are you?", "hi")
    assert all(p["gap"] == p["chosen_score"] - p["rejected_score"] > 0 for p in pairs.values())


def test_sample_scores_are_streamed_not_held(tmp_path):
    """The stage scores `CHUNK` prompts at a time: its peak allocation is the same for 4x the answers, and far below
    the answers file (benchmarks/scale_rehearsal.py found it holding the paper's 250k samples at once)."""
    import tracemalloc

    m0 = tmp_path / "m0"
    write_json(m0 / "model.json", {"path": "unused"})
    config = {"reward": {"name": "test_length"}, "system_prompt": None}
    register_reward("test_length")(Length)
    peaks, sizes = [], []
    try:
        for n in (4 * score_samples.CHUNK, 16 * score_samples.CHUNK):
            folder = tmp_path / f"samples{n}"
            rows = (
                {"id": f"p{i}", "prompt": "Q?" * 50, "samples": [f"{i} {k} " * 80 for k in range(4)]} for i in range(n)
            )
            write_jsonl(folder / "answers.jsonl", rows)
            sizes.append((folder / "answers.jsonl").stat().st_size)
            tracemalloc.start()
            counts = score_samples.run(tmp_path / f"scores{n}", config, samples=folder, m0=m0)
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            assert counts == {"prompts": n, "samples": 4 * n, "unscored": 0}
    finally:
        REWARDS.pop("test_length")
    assert peaks[1] < 1.3 * peaks[0], f"peaks {peaks}: the stage's memory grows with its input"
    assert peaks[1] < sizes[1] / 4, f"peak {peaks[1]} bytes for a {sizes[1]}-byte file: the answers were held"


def test_a_row_with_one_sample_is_refused_before_the_reward_loads(tmp_path):
    """The check streams over the file before `make_reward`: an unknown reward would fail there with a ValueError."""
    rows = [{"id": f"p{i}", "prompt": "Q?", "samples": ["a", "b"]} for i in range(3)] + [
        {"id": "short", "prompt": "Q?", "samples": ["a"]}
    ]
    write_jsonl(tmp_path / "samples" / "answers.jsonl", rows)
    config = {"reward": {"name": "no_such_reward"}, "system_prompt": None}
    with pytest.raises(DataError, match=r"answers\.jsonl: row 'short': every row needs at least two `samples`"):
        score_samples.run(tmp_path / "out", config, samples=tmp_path / "samples", m0=tmp_path / "m0")


def test_best_and_worst_refuses_ties_unscored_and_identical_answers():
    assert best_worst_pairs.best_and_worst(["a", "b", "c"], [1.0, 3.0, 3.0]) == (1, 0)
    assert best_worst_pairs.best_and_worst(["a", "b", "c"], [2.0, 2.0, 2.0]) == "tie"
    assert best_worst_pairs.best_and_worst(["a", "b", "c"], [None, 4.0, None]) == "fewer_than_two_scored"
    assert best_worst_pairs.best_and_worst(["same", "same"], [1.0, 5.0]) == "identical_answers"
    # An empty answer is not ranked (the rehearsal's random model ended a turn at once: SimPO refused the pair).
    assert best_worst_pairs.best_and_worst(["a", "", "c"], [2.0, -9.0, 1.0]) == (0, 2)
    assert best_worst_pairs.best_and_worst(["a", " "], [2.0, -9.0]) == "fewer_than_two_scored"


def test_pairs_accumulate_over_iterations_and_dropped_prompts_say_why(samples_dir, tmp_path):
    write_jsonl(
        tmp_path / "s1" / "scores.jsonl", [{"id": "p0", "scores": [1, 2, 3, 4]}, {"id": "p1", "scores": [2] * 4}]
    )
    config = {"iteration": 1, "per_iteration": 5, "seed": 0}
    counts = best_worst_pairs.run(tmp_path / "it1", config, samples=samples_dir, scores=tmp_path / "s1")
    assert (counts["kept"], counts["dropped_tie"], counts["preference_set"]) == (1, 1, 1)
    assert read_jsonl(tmp_path / "it1" / "dropped.jsonl")[0]["reason"] == "tie"
    write_jsonl(
        tmp_path / "s2" / "scores.jsonl", [{"id": "p0", "scores": [4, 3, 2, 1]}, {"id": "p1", "scores": [1, 2, 0, 3]}]
    )
    config = {"iteration": 2, "per_iteration": 1, "seed": 0}
    counts = best_worst_pairs.run(
        tmp_path / "it2", config, samples=samples_dir, scores=tmp_path / "s2", previous=tmp_path / "it1"
    )
    assert (counts["kept"], counts["added"], counts["preference_set"]) == (2, 1, 2)
    history = read_jsonl(tmp_path / "it2" / "preference_set.jsonl")
    assert [p["iteration"] for p in history] == [1, 2]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The answer is relevant and complete.\nScore: 4", 4.0),
        ("Score: 2 at first, but on reflection... Score: 3", 3.0),
        ("Score: **5**", 5.0),
        ("Score: 2.5", 2.5),
        ("Score: 7", None),  # not on the 0..5 scale
        ("I would give it four points.", None),
        ("", None),
    ],
)
def test_the_additive_score_is_parsed_or_refused(text, expected):
    assert parse_additive_score(text) == expected


def test_unparsable_verdicts_are_counted_and_never_scored():
    assert judge_samples.score(["Fine. Score: 4", "Score: 2", "no verdict"]) == (3.0, 1)
    assert judge_samples.score(["no verdict", "Score: 9"]) == (None, 2)


def test_self_judging_on_a_model_scores_only_parsable_verdicts(tiny_model, samples_dir, tmp_path):
    judge = tmp_path / "judge"
    write_json(judge / "model.json", {"path": str(tiny_model)})
    config = {
        "judging": {"judgments": 2, "max_new_tokens": 4, "temperature": 0.7},
        "generation": {"batch_size": 8},
        "seed": 0,
        "system_prompt": None,
        "dtype": "float32",
    }
    counts = judge_samples.run(tmp_path / "out", config, judge=judge, samples=samples_dir)
    rows = read_jsonl(tmp_path / "out" / "scores.jsonl")
    assert counts["answers"] == 8 and counts["verdicts"] == 16
    unparsable = sum(judge_samples.score(v)[1] for r in rows for v in r["verdicts"])
    assert counts["unparsable"] == unparsable  # a random model's 4 tokens never say "Score: N"
    for r in rows:
        assert [judge_samples.score(v)[0] for v in r["verdicts"]] == r["scores"]


SEED = [
    {"id": "s0", "prompt": "What is 2 + 2?", "gold": "2 + 2 = 4, because adding two and two gives four."},
    {"id": "s1", "prompt": "Name a planet.", "gold": "Mars is a planet of the solar system, the fourth from the Sun."},
    {"id": "s2", "prompt": "Say hi.", "gold": "Hi! Nice to meet you, how can I help?"},
]


def test_judge_examples_of_self_rewarding_sft_are_scored_by_construction():
    examples = seed_sft.eft_examples(SEED[:2])
    assert [e["kind"] for e in examples] == ["eft_gold", "eft_cut", "eft_other"] * 2
    assert [parse_additive_score(e["target"]) for e in examples] == [5, 2, 0] * 2
    gold, cut, other = examples[:3]
    assert SEED[0]["gold"] in gold["prompt"] and SEED[0]["prompt"] in gold["prompt"]
    assert "<response>2 + 2 =</response>" in cut["prompt"]  # the first third of its 12 words
    assert SEED[1]["gold"] in other["prompt"] and SEED[0]["prompt"] in other["prompt"]


def test_seed_po_pairs_are_gold_over_the_models_answer_kept_above_the_reward_threshold(tmp_path):
    seed = [*SEED, {"id": "s3", "prompt": "Why is the sky blue?", "gold": "Air scatters blue light the most."}]
    write_jsonl(tmp_path / "seed" / "train.jsonl", seed)
    answers = [
        {"id": "s0", "prompt": SEED[0]["prompt"], "answer": "5"},
        {"id": "s1", "prompt": SEED[1]["prompt"], "answer": ""},
        {"id": "s2", "prompt": SEED[2]["prompt"], "answer": SEED[2]["gold"]},
        {"id": "s3", "prompt": seed[3]["prompt"], "answer": "No idea."},
    ]
    write_jsonl(tmp_path / "answers" / "answers.jsonl", answers)
    gaps = [{"id": "s0", "gap": 0.3}, {"id": "s1", "gap": 0.9}, {"id": "s2", "gap": 0.0}, {"id": "s3", "gap": 0.2}]
    write_jsonl(tmp_path / "gaps" / "gaps.jsonl", gaps)
    folders = {k: tmp_path / k for k in ("seed", "answers", "gaps")}
    counts = gold_pairs.run(tmp_path / "out", {"threshold": 0.2}, **folders)
    pairs = read_jsonl(tmp_path / "out" / "preference_set.jsonl")
    assert pairs == [{"id": "s0", "prompt": SEED[0]["prompt"], "chosen": SEED[0]["gold"], "rejected": "5"}]
    assert counts == {
        "candidates": 4,
        "preference_set": 1,
        "dropped_empty_answer": 1,
        "dropped_identical": 1,
        "dropped_below_threshold": 1,
    }
    dropped = read_jsonl(tmp_path / "out" / "dropped.jsonl")
    assert [(d["id"], d["reason"]) for d in dropped] == [
        ("s1", "empty_answer"),
        ("s2", "identical"),
        ("s3", "below_threshold"),  # a gap of exactly the threshold does not pass, as SynPO's filter
    ]


def test_ultrafeedback_binarized_rows_become_pairs(monkeypatch, tmp_path):
    import datasets

    def message(role, text):
        return {"role": role, "content": text}

    rows = [
        {
            "prompt": f"Question {i}?",
            "prompt_id": f"id{i}",
            "chosen": [message("user", f"Question {i}?"), message("assistant", f"Good answer {i}.")],
            "rejected": [message("user", f"Question {i}?"), message("assistant", "Same." if i == 2 else f"Bad {i}.")],
            "score_chosen": 8.0,
            "score_rejected": 4.0,
        }
        for i in range(3)
    ]
    rows[2]["chosen"][-1]["content"] = "Same."
    calls = []

    def load_dataset(hub_id, split):
        calls.append((hub_id, split))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    counts = preference_data.run(tmp_path, {"data": {"source": "hub"}})
    assert calls == [("HuggingFaceH4/ultrafeedback_binarized", "train_prefs")]
    pairs = {p["id"]: p for p in read_jsonl(tmp_path / "preference_set.jsonl")}
    assert counts == {"pairs": 3, "dropped_identical": 1, "preference_set": 2}
    assert pairs["id1"] == {"id": "id1", "prompt": "Question 1?", "chosen": "Good answer 1.", "rejected": "Bad 1."}


def test_a_preference_file_without_rejected_answers_is_refused(tmp_path):
    bad = tmp_path / "pairs.jsonl"
    write_jsonl(bad, [{"id": "x", "prompt": "Hi?", "chosen": "Hello!"}])
    with pytest.raises(DataError, match="field 'rejected'"):
        preference_data.jsonl_pairs(PreferenceDataConfig(source="jsonl", file=str(bad)))


def test_the_shipped_demo_preferences_load(tmp_path):
    counts = preference_data.run(
        tmp_path, {"data": {"source": "jsonl", "file": "pkg://synpo/data/spa_seed_demo/train.jsonl"}}
    )
    assert counts["preference_set"] == 64


def test_make_reward_knows_no_test_rewards():
    with pytest.raises(ValueError, match="test_length"):
        make_reward(RewardConfig(name="test_length"), "unused")


def test_a_score_read_from_probabilities_is_the_expected_points():
    import math

    assert judge_samples.expected_score([math.log(p) if p else -math.inf for p in (0, 0, 0.5, 0, 0, 0.5)]) == 3.5
    assert judge_samples.expected_score([0.0] * 6) == pytest.approx(2.5)
    assert judge_samples.SCORE_OPTIONS == [" 0", " 1", " 2", " 3", " 4", " 5"]


def test_self_judging_from_probabilities_scores_every_answer(tiny_model, samples_dir, tmp_path):
    judge = tmp_path / "judge"
    write_json(judge / "model.json", {"path": str(tiny_model)})
    config = {
        "judging": {"verdict": "logprobs"},
        "generation": {"batch_size": 8},
        "seed": 0,
        "system_prompt": None,
        "dtype": "float32",
    }
    counts = judge_samples.run(tmp_path / "out", config, judge=judge, samples=samples_dir)
    assert counts == {"answers": 8, "verdicts": 8, "unparsable": 0, "unscored_answers": 0}
    scores = [s for r in read_jsonl(tmp_path / "out" / "scores.jsonl") for s in r["scores"]]
    assert len(scores) == 8 and all(0 <= s <= 5 for s in scores) and len(set(scores)) > 1
