"""`evaluation.run` on a tiny random model: the mini lm-eval tasks through real lm-eval (offline), the judged
suites end to end with the tiny model as policy and judge, and resuming a suite whose judge failed half-way."""

from __future__ import annotations

import json
import math

import pytest

from synpo import evaluation
from synpo.config import EvaluationConfig, GenerationConfig, JudgeConfig

GEN = GenerationConfig(temperature=0.7, batch_size=2)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)


def judged_config(tiny_model, limit: int) -> EvaluationConfig:
    cfg = EvaluationConfig(suites=["alpaca_eval", "arena_hard", "mt_bench"], judge=JudgeConfig(max_new_tokens=6))
    cfg.judge.model = str(tiny_model)
    for suite in (cfg.alpaca_eval, cfg.arena_hard, cfg.mt_bench):
        suite.limit, suite.max_new_tokens = limit, 6
    cfg.arena_hard.bootstrap_rounds = 5
    return cfg


def test_mini_lm_eval_tasks_run_through_lm_eval(tiny_model, tmp_path):
    cfg = EvaluationConfig(suites=["lm_eval"])
    cfg.lm_eval.limit = 6
    cfg.lm_eval.bootstrap_iters = 0
    result = evaluation.run(str(tiny_model), cfg, tmp_path, GEN, model_name="tiny")["lm_eval_mini"]
    for key, shots in (("mini_mc", 3), ("mini_gen", 3)):
        m = result["metrics"][key]
        assert 0.0 <= m["score"] <= 1.0 and m["num_fewshot"] == shots
        assert m["n_samples"]["effective"] == 6
    saved = json.loads((tmp_path / "tiny" / "lm_eval_mini.json").read_text())
    assert saved["metrics"]["mini_mc"]["task"] == "lm_eval_mini_mc" and saved["versions"]["lm-eval"]
    # No chat template by default (the Open LLM leaderboard's setting), recorded in the result file.
    assert saved["metrics"]["mini_mc"]["apply_chat_template"] is False
    assert saved["generation"]["apply_chat_template"] is False
    # lm-eval generates through its own HFLM, not the project's generator.
    assert saved["answer_termination"] is None


def test_the_lm_eval_task_index_is_built_once_and_only_over_include_path_when_it_holds_every_task():
    from synpo.evaluation import open_llm

    cfg = EvaluationConfig().lm_eval  # the mini tasks, in include_path
    manager = open_llm.task_manager(cfg.include_path, open_llm.lm_eval_tasks(cfg))
    assert sorted(manager.all_tasks) == ["lm_eval_mini_gen", "lm_eval_mini_mc"]  # lm-eval's ~15k not indexed
    assert open_llm.task_manager(cfg.include_path, open_llm.lm_eval_tasks(cfg)) is manager
    cfg.tasks = ["mini_mc", "arc"]  # a task of lm-eval's own: the full index, the folder's tasks included
    full = open_llm.task_manager(cfg.include_path, open_llm.lm_eval_tasks(cfg))
    assert {"arc_challenge", "lm_eval_mini_mc"} <= set(full.all_tasks)


def test_judged_mini_suites_end_to_end_with_a_tiny_policy_and_judge(tiny_model, tmp_path, monkeypatch):
    cfg = judged_config(tiny_model, limit=3)
    results = evaluation.run(str(tiny_model), cfg, tmp_path, GEN, model_name="tiny")
    ae = results["alpaca_eval_mini"]
    assert ae["n_items"] == 3 and ae["metrics"]["n_annotations"] == 3
    assert ae["judge"]["model"] == str(tiny_model) and ae["generation"]["max_new_tokens"] == 6
    # A random judge rarely says "m" or "M": whatever it says is either parsed or counted, never dropped.
    parsed = ae["metrics"].get("n_total", 0)
    assert parsed + ae["metrics"]["n_unparsable"] == 3
    ah = results["arena_hard_mini"]["metrics"]
    assert ah["n_games"] == 6 and ah["baseline"] == "baseline-mini"
    mt = results["mt_bench_mini"]["metrics"]
    assert mt["n_judgments"] == 6
    for name in ("alpaca_eval_mini", "arena_hard_mini", "mt_bench_mini"):
        saved = json.loads((tmp_path / "tiny" / f"{name}.json").read_text())
        assert saved["versions"]["alpaca-eval"] == "0.6.6" and saved["suite"] == name
        # How the policy's answers ended (3 items, MT-Bench's two turns each).
        term = saved["answer_termination"]
        assert term["ended"] + term["cut_at_max_new_tokens"] == (6 if name == "mt_bench_mini" else 3)

    # A rerun finds every answer and judgment on disk: nothing is generated again.
    def no_generation(*args, **kwargs):
        raise AssertionError("regenerated")

    monkeypatch.setattr("synpo.generation.make_generator", no_generation)
    again = evaluation.run(str(tiny_model), cfg, tmp_path, GEN, model_name="tiny")
    assert again["mt_bench_mini"]["metrics"] == mt


def test_every_local_judge_verdict_parses_in_logprobs_mode(tiny_model, tmp_path):
    from synpo.evaluation.arena_hard import WINNER

    cfg = judged_config(tiny_model, limit=3)
    cfg.judge.verdict = "logprobs"
    results = evaluation.run(str(tiny_model), cfg, tmp_path, GEN, model_name="tiny")
    ae = results["alpaca_eval_mini"]["metrics"]
    assert ae["n_unparsable"] == 0 and ae["win_rate"] is not None
    rows = [json.loads(line) for line in (tmp_path / "tiny" / "alpaca_eval_mini" / "annotations.jsonl").open()]
    for r in rows:
        if r["raw_completion"] is not None:  # judged (identical answers are a tie without a judge)
            # AE2's weighted preference: 1 + P(model's answer) among the two identifiers.
            top = {t["token"]: t["logprob"] for t in r["raw_completion"]["logprobs"]["content"][0]["top_logprobs"]}
            p_m, p_big = (math.exp(top[t]) for t in ("m", "M"))
            p_model = (p_m if r["is_switched_outputs"] else p_big) / (p_m + p_big)
            assert r["preference"] == pytest.approx(1 + p_model)
    ah = results["arena_hard_mini"]["metrics"]
    assert ah["n_unparsable"] == 0 and ah["n_battles"] >= ah["n_games"]
    games = [
        g
        for line in (tmp_path / "tiny" / "arena_hard_mini" / "model_judgment.jsonl").open()
        for g in json.loads(line)["games"]
    ]
    # Each game's verdict is its most probable label.
    assert all(g["score"] == max(g["logprobs"], key=g["logprobs"].get) and g["score"] in WINNER for g in games)
    mt = results["mt_bench_mini"]["metrics"]
    assert mt["n_unparsable"] == 0 and 1 <= mt["average"] <= 10
    for j in map(json.loads, (tmp_path / "tiny" / "mt_bench_mini" / "model_judgment.jsonl").open()):
        assert j["score"] == float(max(j["logprobs"], key=j["logprobs"].get)) and len(j["logprobs"]) == 10
    saved = json.loads((tmp_path / "tiny" / "mt_bench_mini.json").read_text())
    assert saved["judge"]["verdict"] == "logprobs"


def test_openai_judge_with_logprobs_verdict_fails_before_generation(tiny_model):
    cfg = judged_config(tiny_model, limit=1)
    cfg.judge = JudgeConfig(backend="openai", base_url="http://127.0.0.1:9/v1", model="gpt-4", verdict="logprobs")
    with pytest.raises(evaluation.EvaluationError, match=r"evaluation\.judge\.verdict=logprobs"):
        evaluation.validate(str(tiny_model), cfg)


class FlakyJudge:
    """Answers "M" (the second output wins) and fails on call number `fail_on`."""

    def __init__(self, fail_on: int | None):
        self.calls, self.fail_on = 0, fail_on

    def complete(self, conversations):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("judge went away")
        return ["M"] * len(conversations)


def test_alpaca_eval_resumes_after_the_judge_fails_half_way(tiny_model, tmp_path, monkeypatch):
    cfg = judged_config(tiny_model, limit=4)
    cfg.suites = ["alpaca_eval"]
    judge = FlakyJudge(fail_on=2)
    monkeypatch.setattr(evaluation.Context, "judge", lambda self: judge)
    with pytest.raises(RuntimeError, match="went away"):
        evaluation.run(str(tiny_model), cfg, tmp_path, GEN, model_name="tiny")
    work = tmp_path / "tiny" / "alpaca_eval_mini"
    assert len((work / "annotations.jsonl").read_text().splitlines()) == 2  # the first chunk is kept

    judge = FlakyJudge(fail_on=None)
    monkeypatch.setattr(evaluation.Context, "judge", lambda self: judge)
    m = evaluation.run(str(tiny_model), cfg, tmp_path, GEN, model_name="tiny")["alpaca_eval_mini"]["metrics"]
    assert judge.calls == 1  # only the second chunk was judged
    assert m["n_annotations"] == 4 and m["n_unparsable"] == 0
    rows = [json.loads(line) for line in (work / "annotations.jsonl").read_text().splitlines()]
    # "M" is the second output shown: the model's unless alpaca-eval's seeded switch put it first.
    assert [r["preference"] for r in rows] == [1.0 if r["is_switched_outputs"] else 2.0 for r in rows]
