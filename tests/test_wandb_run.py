"""The W&B run of a real 2-iteration SynPO sweep on a tiny random model (offline, read back from its `.wandb` file):
config, group, the `iteration` step metric, per-trainer prefixes, per-iteration data and the data audit, evaluation
metrics, tables; and the printed table's judge-free columns. Two jobs of `-m audit.max_length_ratio=1.5,2.0` under a
beta grid (a flat optimizer.beta sweep over a grid is refused at start-up): the swept key only sets when the audit
warns, so the second job reuses every stage of the first and costs seconds."""

from __future__ import annotations

import json

import pytest
from wandb_records import read_run

ARGS = [
    "-m",
    "audit.max_length_ratio=1.5,2.0",
    "model.source=hub",
    "model.name=tiny",
    "evaluation=demo",
    "evaluation.suites=[alpaca_eval]",
    "evaluation.alpaca_eval.limit=3",
    "evaluation.alpaca_eval.max_new_tokens=4",
    "evaluation.gold_likelihood.max_items=4",
    "method.prompt_source=seed",
    "method.prompts_per_iteration=3",
    "method.pairs_per_iteration=2",
    "method.improver_seed_items=3",
    "method.max_new_tokens.answer=6",
    "method.max_new_tokens.rewrite=8",
    "method.beta_grid=[2,4]",
    "method.selection_items=2",
    "reward.threshold=-1.0",
    "reward.max_length=128",
    "optimizer.batch_size=2",
    "optimizer.per_device_batch_size=2",
    "optimizer.max_length=128",
    "method.improver_sft.batch_size=2",
    "method.improver_sft.per_device_batch_size=2",
    "method.improver_sft.max_length=128",
    "threads=1",
]


@pytest.fixture(scope="module")
def sweep(tiny_model, tmp_path_factory):
    from conftest import run_synpo

    cwd = tmp_path_factory.mktemp("wandb")
    result = run_synpo(*ARGS, f"model.path={tiny_model}", cwd=cwd, home=cwd / "home", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted(cwd.glob("multirun/*/*/[0-9]"))
    assert len(jobs) == 2
    return jobs, [read_run(j) for j in jobs], result


def test_config_is_the_hydra_config_and_the_jobs_share_a_group(sweep):
    jobs, runs, _ = sweep
    for job, run, ratio in zip(jobs, runs, (1.5, 2.0), strict=True):
        assert run.config["audit"]["max_length_ratio"] == ratio  # the swept key, as the user swept it
        assert run.config["optimizer"]["beta"] == 2.0  # the config's, not a trainer's argument
        assert run.config["method"]["beta_grid"] == [2.0, 4.0] and run.config["reward"]["threshold"] == -1.0
        assert not {"learning_rate", "beta", "max_length", "output_dir"} & set(run.config)  # no TrainingArguments
        assert run.group == job.parent.name
    assert runs[0].group == runs[1].group


def test_trainers_log_under_their_own_prefix_and_step(sweep):
    run = sweep[1][0]
    trainers = ["iter1/improver", "iter1/policy_beta2", "iter1/policy_beta4", "iter2/improver", "iter2/policy_beta2"]
    for label in trainers:
        prefix = f"train/{label}"
        assert run.step_metrics[f"{prefix}/*"] == f"{prefix}/step"
        losses = run.series(f"{prefix}/loss", f"{prefix}/step")
        assert losses and [s for s, _ in losses] == list(range(1, len(losses) + 1))
    assert run.series("train/iter2/policy_beta4/rewards/accuracies", "train/iter2/policy_beta4/step")
    assert not any(k.startswith("train/") and k.count("/") == 1 for row in run.history for k in row)  # no train/loss


def test_iteration_data_and_the_audit_are_logged_against_iteration(sweep):
    jobs, runs, result = sweep
    run = runs[0]
    for prefix in ("data/*", "eval/*", "samples/*"):
        assert run.step_metrics[prefix] == "iteration"
    # Which beta of the grid wins depends on the sampled data; that each iteration logs its choice does not.
    chosen = run.series("data/chosen_beta", "iteration")
    assert [t for t, _ in chosen] == [1, 2] and all(beta in (2, 4) for _, beta in chosen)
    assert [t for t, _ in run.series("data/pairs/preference_set", "iteration")] == [1, 2]
    assert [v for _, v in run.series("data/pairs/preference_set", "iteration")] == [2, 4]
    for key in ("length_ratio", "chosen_tokens_median", "rewrites_cut", "identical_share", "improver_lengthening"):
        assert [t for t, _ in run.series(f"data/audit/{key}", "iteration")] == [1, 2], key
    assert [t for t, _ in run.series("data/policy_beta2/reward_accuracy", "iteration")] == [1, 2]
    hist = next(row["data/audit/gap_histogram"] for row in run.history if "data/audit/gap_histogram" in row)
    assert hist["_type"] == "histogram" and sum(hist["values"]) == 3
    audit = json.loads((jobs[0] / "stages/iter1/audit/audit.json").read_text())
    assert audit["threshold"] == -1.0 and sum(audit["gap_histogram"]["counts"]) == 3
    # Answers of at most 6 tokens are all cut: the run says so, naming the iteration.
    assert "iteration 1: 100% of answers are cut at max_new_tokens" in result.stdout + result.stderr


def test_every_model_is_evaluated_against_iteration_and_the_summary_is_the_last(sweep):
    run = sweep[1][0]
    for key in ("alpaca_eval_mini/win_rate", "alpaca_eval_mini/standard_error", "gold_likelihood/mean"):
        assert [t for t, _ in run.series(f"eval/{key}", "iteration")] == [0, 1, 2], key
    assert run.series("eval/gold_likelihood/delta", "iteration")[0] == (0, 0.0)
    for key in ("gold_likelihood/mean", "alpaca_eval_mini/win_rate", "answers/mean_tokens"):
        assert run.summary[f"eval/{key}"] == dict(run.series(f"eval/{key}", "iteration"))[2], key


def test_tables_of_stages_pairs_and_answers(sweep):
    jobs, runs, _ = sweep
    run = runs[0]
    (stages,) = [row["stages"] for row in run.history if "stages" in row]
    table = run.table(stages)
    labels = [row[0] for row in table["data"]]
    assert table["columns"] == ["label", "stage", "reused", "seconds", "counts"]
    assert labels[:2] == ["seed_set", "m0"] and "iter2/audit" in labels and "likelihood/M2" in labels
    assert not any(k.startswith("stages/") for row in run.history for k in row)  # no single-point charts
    pairs = run.table(next(row["samples/iter2/pairs"] for row in run.history if "samples/iter2/pairs" in row))
    assert pairs["columns"][:4] == ["prompt", "rejected", "chosen", "gap"] and len(pairs["data"]) == 2
    answers = run.table(next(row["samples/eval/M1"] for row in run.history if "samples/eval/M1" in row))
    assert answers["columns"] == ["instruction", "M0 answer", "M1 answer", "verdict"] and len(answers["data"]) == 3


def test_the_printed_table_has_the_judge_free_columns_and_marks_the_judge(sweep):
    out = sweep[2].stdout
    header = next(line for line in out.splitlines() if line.startswith("model "))
    assert "AE2 WR*" in header and "gold LL" in header and "Δ vs M0" in header and "answer tokens" in header
    assert "* judged by M0 itself (tiny)" in out
