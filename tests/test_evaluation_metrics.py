"""Each benchmark's metric against hand-computed values on fixed annotations, its verdict parsing, the lm-eval
settings table against the paper, the mini suites' data, and the input checks that run before generation."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from synpo.config import EvaluationConfig
from synpo.errors import EvaluationError
from synpo.evaluation import alpaca, arena_hard, mt_bench, open_llm, validate
from synpo.evaluation.common import ItemLog, load_rows

# ---------------------------------------------------------------- AlpacaEval


def annotations(prefs: list[float | None], seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "index": i,
            "instruction": f"q{i}",
            "output_1": "b" * int(rng.integers(20, 200)),
            "output_2": "m" * int(rng.integers(20, 400)),
            "generator_1": "base",
            "generator_2": "model",
            "preference": p,
        }
        for i, p in enumerate(prefs)
    ]


def test_raw_win_rate_counts_ties_half_and_reports_unparsable():
    # model wins 3, baseline wins 2, 1 tie, 1 unparsable -> (3 + 0.5) / 6
    rows = annotations([2.0, 2.0, 2.0, 1.0, 1.0, 1.5, None])
    m = alpaca.win_rates(rows, "length_controlled_minimal")
    assert m["win_rate"] == pytest.approx(3.5 / 6 * 100)
    assert (m["n_wins"], m["n_wins_base"], m["n_draws"], m["n_total"]) == (3, 2, 1, 6)
    assert (m["n_annotations"], m["n_unparsable"]) == (7, 1)


def test_lc_win_rate_equals_alpaca_eval_function_fed_the_same_data(tmp_path, monkeypatch):
    """Our offline minimal GLM == alpaca-eval's own `get_length_controlled_winrate` whose df_gamed.csv download is
    served from a local file (its instruction_difficulty column is unused by the minimal formula)."""
    from alpaca_eval.metrics import glm_winrate

    rng = np.random.default_rng(1)
    rows = annotations(list(rng.choice([1.0, 2.0, 1.5], size=60, p=[0.3, 0.6, 0.1])), seed=1)
    # make longer answers win more often, so the length term matters
    for r in rows:
        if len(r["output_2"]) > 300:
            r["preference"] = 2.0
    gamed = tmp_path / "df_gamed.csv"
    pd.DataFrame({"model": "x", "index": range(60), "instruction_difficulty": rng.normal(size=60)}).to_csv(gamed)
    monkeypatch.setattr(glm_winrate, "hf_hub_download", lambda **kwargs: str(gamed))
    df = pd.DataFrame(rows)
    expected = glm_winrate.get_length_controlled_winrate(
        df.copy(), glm_name="length_controlled_minimal", save_weights_dir=None
    )
    ours = alpaca.length_controlled_winrate(df, "length_controlled_minimal")
    assert ours["length_controlled_winrate"] == pytest.approx(expected["length_controlled_winrate"], abs=1e-9)
    assert ours["lc_standard_error"] == pytest.approx(expected["lc_standard_error"], abs=1e-9)
    assert 0 < ours["length_controlled_winrate"] < 100


@pytest.mark.parametrize(
    "text, switched, expected",
    [
        ("m", False, 1.0),
        ("M", False, 2.0),
        (" M\n", True, 1.0),
        ('"m"', True, 2.0),
        ("Model", False, None),
        ("", False, None),
    ],
)
def test_alpaca_verdict_parsing(text, switched, expected):
    assert alpaca.parse_preference(text, switched) == expected


def test_alpaca_judge_prompt_is_alpaca_evals_template_in_its_seeded_order():
    pairs = [{"instruction": f"say {i}", "output_1": f"base {i}", "output_2": f"model {i}"} for i in range(20)]
    convs, switched = alpaca.judge_conversations(pairs)
    assert 0 < sum(switched) < 20  # both orders occur, fixed by the instruction
    assert alpaca.judge_conversations(pairs)[1] == switched
    system, user = convs[0]
    assert system["role"] == "system" and "leaderboard" in system["content"]
    first, second = ("model 0", "base 0") if switched[0] else ("base 0", "model 0")
    assert user["content"].index(first) < user["content"].index(second)
    assert '"model_identifier": "m"' in user["content"]


# ---------------------------------------------------------------- Arena-Hard


@pytest.mark.parametrize(
    "text, expected",
    [
        ("My final verdict is tie: [[A=B]]", ("A=B", False)),
        ("[[B>>A]] ... again [[B>>A]]", ("B>>A", False)),
        ("no label here", (None, True)),
        ("[[A>B]] or maybe [[B>A]]", (None, False)),
    ],
)
def test_arena_hard_verdict_parsing(text, expected):
    assert arena_hard.parse_verdict(text) == expected


def judgment(qid, g1, g2):
    return {"uid": qid, "model": "model", "games": [{"score": g1}, {"score": g2}]}


FIXED = [
    judgment(1, "B>>A", "A>B"),  # game 1 model strongly better (x3), game 2 model (as A) better
    judgment(2, "A>B", "B>A"),  # baseline better twice
    judgment(3, "A=B", "A>>B"),  # tie, then model (as A) strongly better (x3)
    judgment(4, None, "B>>A"),  # unparsable game dropped; baseline (as B) strongly better (x3)
]


def test_battles_weight_strong_verdicts_and_drop_unparsable():
    b = arena_hard.get_battles(FIXED, "base", weight=3)
    counts = b["winner"].value_counts().to_dict()
    assert counts == {"model_b": 3 + 1 + 3, "model_a": 1 + 1 + 3, "tie": 1}
    assert len(b) == 13


def test_bt_win_rate_and_bootstrap_ci_match_hand_computation():
    b = arena_hard.get_battles(FIXED, "base")
    score = {"model_b": 1.0, "model_a": 0.0, "tie": 0.5}
    # Two players: the BT maximum-likelihood win rate is the mean battle score (ties half).
    expected = (7 + 0.5) / 13 * 100
    out = arena_hard.bt_win_rate(b, "model", "base", rounds=50, seed=7)
    assert out["win_rate"] == pytest.approx(expected, abs=1e-3)
    rng = np.random.RandomState(7)
    elos = []
    for _ in range(50):
        p = b.sample(frac=1.0, replace=True, random_state=rng)["winner"].map(score).mean()
        elos.append(1000 + 400 * math.log10(p / (1 - p)))
    lo, hi = (100 / (1 + 10 ** ((1000 - np.percentile(elos, q)) / 400)) for q in (2.5, 97.5))
    assert out["ci_lower"] == pytest.approx(lo, abs=1e-2)
    assert out["ci_upper"] == pytest.approx(hi, abs=1e-2)
    assert out["ci_lower"] < out["win_rate"] < out["ci_upper"]


# ---------------------------------------------------------------- MT-Bench


@pytest.mark.parametrize(
    "text, expected", [("Rating: [[7]]", 7.0), ("score [8] overall", 8.0), ("[[7.5]]", 7.5), ("great answer", -1.0)]
)
def test_mt_bench_rating_parsing(text, expected):
    assert mt_bench.parse_rating(text) == expected


def test_mt_bench_averages_leave_out_unparsable():
    js = [
        {"question_id": 1, "turn": 1, "score": 8.0},
        {"question_id": 1, "turn": 2, "score": 6.0},
        {"question_id": 2, "turn": 1, "score": 4.0},
        {"question_id": 2, "turn": 2, "score": -1.0},
        {"question_id": 3, "turn": 1, "score": 9.0},
        {"question_id": 3, "turn": 2, "score": 7.0},
    ]
    m = mt_bench.summarize(js, {"1": "math", "2": "writing", "3": "math"})
    assert m["turn_1"] == pytest.approx(7.0)
    assert m["turn_2"] == pytest.approx(6.5)
    assert m["average"] == pytest.approx(34 / 5)
    assert m["by_category"] == {"math": pytest.approx(7.5), "writing": pytest.approx(4.0)}
    assert (m["n_judgments"], m["n_unparsable"]) == (6, 1)


def test_mt_bench_prompts_and_temperatures_follow_fschat():
    assert mt_bench.TEMPERATURE == {
        "writing": 0.7,
        "roleplay": 0.7,
        "extraction": 0.0,
        "math": 0.0,
        "coding": 0.0,
        "reasoning": 0.0,
        "stem": 0.1,
        "humanities": 0.1,
    }
    q = {"question_id": 1, "category": "math", "turns": ["2+2?", "times 3?"], "reference": ["4", "12"]}
    name, conv = mt_bench.judge_conversation(q, ["four", "twelve"], 2)
    assert name == "single-math-v1-multi-turn"
    assert "### Reference answer:\n12" in conv[1]["content"] and "### Assistant A:\ntwelve" in conv[1]["content"]
    name, conv = mt_bench.judge_conversation({**q, "category": "writing"}, ["four", "twelve"], 1)
    assert name == "single-v1" and conv[0]["content"] == "You are a helpful assistant."
    assert "[Question]\n2+2?" in conv[1]["content"] and "Reference" not in conv[1]["content"]


# ---------------------------------------------------------------- lm-eval settings table


def test_lm_eval_table_matches_the_paper():
    """SynPO Sec. 4 / Tables 4-5: ARC 25-shot acc_norm, HellaSwag 10-shot acc_norm, TruthfulQA 0-shot mc2, MMLU
    5-shot acc, Winogrande 5-shot acc, GSM8K 5-shot; OBQA, HAE-RAE, MathQA, XNLI, ToxiGen, PROST 5-shot."""
    paper = {
        "arc": ("arc_challenge", 25, "acc_norm"),
        "hellaswag": ("hellaswag", 10, "acc_norm"),
        "truthfulqa": ("truthfulqa_mc2", 0, "acc"),
        "mmlu": ("mmlu", 5, "acc"),
        "winogrande": ("winogrande", 5, "acc"),
        "gsm8k": ("gsm8k", 5, "exact_match"),
        "openbookqa": ("openbookqa", 5, "acc_norm"),
        "haerae": ("haerae", 5, "acc"),
        "mathqa": ("mathqa", 5, "acc"),
        "xnli": ("xnli", 5, "acc"),
        "toxigen": ("toxigen", 5, "acc"),
        "prost": ("prost", 5, "acc"),
    }
    for key, (task, shots, metric) in paper.items():
        t = open_llm.TASKS[key]
        assert (t.task, t.num_fewshot, t.metric) == (task, shots, metric), key


# ---------------------------------------------------------------- suites and input checks


def test_mini_suites_have_the_promised_size_and_format():
    cfg = EvaluationConfig()
    ae = alpaca.load_suite(cfg.alpaca_eval.data)
    assert len(ae) >= 60 and all(r["dataset"] == "alpaca_eval_mini" for r in ae)
    qs = load_rows(cfg.arena_hard.questions, "q", ("question_id", "category", "cluster", "turns"))
    answers = load_rows(cfg.arena_hard.baseline_answers, "a", ("question_id", "model_id", "choices"))
    assert len(qs) >= 30 and {q["question_id"] for q in qs} == {a["question_id"] for a in answers}
    mt = load_rows(cfg.mt_bench.questions, "m", ("question_id", "category", "turns"))
    assert len(mt) >= 12
    mt_bench.validate(mt)
    assert {q["category"] for q in mt} >= set(mt_bench.TEMPERATURE)
    for name in ("mini_mc", "mini_gen"):
        data = json.loads((open_llm.resolve_path(cfg.lm_eval.include_path) / f"{name}.json").read_text())
        assert len(data["test"]) >= 40


def test_bad_input_fails_before_generation_naming_the_key(tmp_path, tiny_model):
    with pytest.raises(EvaluationError, match=r"evaluation\.suites.*alpaca"):
        validate(str(tiny_model), EvaluationConfig(suites=["alpacaeval"]))
    cfg = EvaluationConfig(suites=["lm_eval"])
    cfg.lm_eval.tasks = ["arc", "arc_easy"]
    with pytest.raises(EvaluationError, match=r"evaluation\.lm_eval\.tasks.*arc_easy"):
        validate(str(tiny_model), cfg)
    with pytest.raises(EvaluationError, match="model_path"):
        validate(str(tmp_path / "no_such_checkpoint"), EvaluationConfig(suites=["mt_bench"]))
    cfg = EvaluationConfig(suites=["arena_hard"])
    cfg.arena_hard.questions = str(tmp_path / "missing.jsonl")
    with pytest.raises(EvaluationError, match=r"evaluation\.arena_hard\.questions"):
        validate(str(tiny_model), cfg)


def test_item_log_resumes_and_drops_a_torn_line(tmp_path):
    path = tmp_path / "log.jsonl"
    calls = []

    def compute(chunk):
        calls.append([it["id"] for it in chunk])
        return [{"id": it["id"], "v": it["id"] * 2} for it in chunk]

    items = [{"id": i} for i in range(5)]
    ItemLog(path, "id").fill(items[:3], compute, 2)
    path.write_text(path.read_text() + '{"id": 3, "v"')  # a crash mid-append
    rows = ItemLog(path, "id").fill(items, compute, 2)
    assert [r["v"] for r in rows] == [0, 2, 4, 6, 8]
    assert calls == [[0, 1], [2], [3, 4]]


def test_configs_compose_and_paper_carries_the_papers_settings():
    from hydra import compose, initialize_config_dir

    from synpo.config import register_configs

    register_configs()
    conf = str(__import__("pathlib").Path(__file__).parents[1] / "conf")
    with initialize_config_dir(config_dir=conf, version_base=None):
        mini = compose(config_name="config", overrides=["evaluation=mini"]).evaluation
        paper = compose(config_name="config", overrides=["evaluation=paper"]).evaluation
        demo = compose(config_name="config", overrides=["evaluation=demo"]).evaluation
    assert "mini" in mini.alpaca_eval.name and mini.judge.backend == "local"
    # The small local judge's verdicts are read from its log-probabilities; GPT-4's are parsed from its judgments.
    assert (mini.judge.verdict, demo.judge.verdict, paper.judge.verdict) == ("logprobs", "logprobs", "generate")
    assert (paper.alpaca_eval.data, paper.alpaca_eval.temperature, paper.alpaca_eval.max_new_tokens) == (
        "hub",
        0.7,
        2048,
    )
    assert paper.alpaca_eval.glm == "length_controlled_v1" and paper.judge.model == "gpt-4-1106-preview"
    # AlpacaEval is read as the leaderboard's weighted annotator reads it; Arena-Hard's and MT-Bench's judges write.
    assert (paper.alpaca_eval.verdict, paper.arena_hard.verdict, paper.mt_bench.verdict) == (
        "logprobs",
        "generate",
        "generate",
    )
    assert paper.arena_hard.baseline_answers.endswith("gpt-4-0314.jsonl") and paper.arena_hard.bootstrap_rounds == 100
    assert set(paper.lm_eval.tasks) == set(open_llm.TASKS) - {"mini_mc", "mini_gen"}
