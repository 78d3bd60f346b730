"""The baselines end to end through the `synpo` command, on a tiny random model as M0 (seconds, not minutes):
the stages each method runs, in order, and the pairs and starting points of its trainings."""

from __future__ import annotations

import json

import pytest

from synpo.io import read_jsonl


def tiny(model) -> list[str]:
    return [
        "model.source=hub",
        f"model.path={model}",
        "model.name=tiny",
        "logger=none",
        "evaluation=none",
        "optimizer.batch_size=2",
        "optimizer.per_device_batch_size=2",
        "optimizer.max_length=128",
    ]


def manifest(run_dir, stage: str) -> dict:
    return json.loads((run_dir / "stages" / stage / "manifest.json").read_text())


def run(tmp_path, *args: str):
    from conftest import run_synpo

    result = run_synpo(*args, cwd=tmp_path, home=tmp_path / "home", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs").glob("*/*")
    return run_dir, json.loads((run_dir / "summary.json").read_text())


def test_sampling_ranking_trains_m0_on_the_accumulated_best_and_worst(tiny_model, tmp_path):
    run_dir, summary = run(
        tmp_path,
        "experiment=cpu_sampling_ranking",
        *tiny(tiny_model),
        "method.prompt_source=seed",
        "method.prompts_per_iteration=3",
        "method.samples_per_prompt=3",
        "method.pairs_per_iteration=2",
        "method.max_new_tokens.answer=8",
        "reward.max_length=128",
    )
    stages = ["seed_set", "m0"] + [
        f"iter{t}/{s}" for t in (1, 2) for s in ("samples", "sample_scores", "pairs", "policy")
    ]
    assert [s["label"] for s in summary["stages"]] == stages
    assert set(summary["models"]) == {"M0", "M1", "M2"}
    m0 = manifest(run_dir, "m0")["key"]
    for t in (1, 2):
        samples = {r["id"]: r for r in read_jsonl(run_dir / "stages" / f"iter{t}/samples/answers.jsonl")}
        scores = {r["id"]: r["scores"] for r in read_jsonl(run_dir / "stages" / f"iter{t}/sample_scores/scores.jsonl")}
        assert len(samples) == 3 and all(len(r["samples"]) == 3 for r in samples.values())
        for p in read_jsonl(run_dir / "stages" / f"iter{t}/pairs/pairs.jsonl"):
            answers, s = samples[p["id"]]["samples"], scores[p["id"]]
            assert p["chosen"] == answers[s.index(max(s))] and p["rejected"] == answers[s.index(min(s))]
        policy = manifest(run_dir, f"iter{t}/policy")
        assert policy["inputs"]["m0"]["key"] == m0  # SimPO from M0, as SynPO
        assert policy["counts"]["pairs"] == manifest(run_dir, f"iter{t}/pairs")["counts"]["preference_set"]
        assert policy["counts"]["prompts_cut"] == policy["counts"]["rows_dropped"] == 0  # the stage counts its cuts
    # iteration 2 samples from M1
    assert manifest(run_dir, "iter2/samples")["inputs"]["model"]["key"] == manifest(run_dir, "iter1/policy")["key"]


def test_seed_only_variants_train_on_the_pairs_they_describe(tiny_model, tmp_path):
    run_dir, summary = run(
        tmp_path,
        "experiment=cpu_seed_only",
        *tiny(tiny_model),
        "method.seed_items=3",
        "method.max_new_tokens.answer=8",
        "method.sft.batch_size=4",
        "method.sft.per_device_batch_size=2",
        "method.sft.max_length=128",
        "reward.max_length=128",
        # self_judge gaps lie in [-1, 1]: a random model's pairs all pass (the filter itself: test_baselines).
        "reward.threshold=-1.0",
    )
    assert set(summary["models"]) == {"M0", "seed_sft", "seed_po", "seed_sft_po", "seed_sft_po_multi_epoch"}
    seed = {r["id"]: r for r in read_jsonl(run_dir / "stages" / "seed_set" / "train.jsonl")}
    key = {s: manifest(run_dir, s)["key"] for s in ("m0", "seed_sft", "seed_pairs", "seed_sft_pairs")}
    # Seed PO: gold vs M0's answers; Seed SFT + PO: gold vs the Seed SFT model's own answers. Both filtered by the gap.
    for prefix, model in (("seed", "m0"), ("seed_sft", "seed_sft")):
        answers = {r["id"]: r["answer"] for r in read_jsonl(run_dir / "stages" / f"{prefix}_answers" / "answers.jsonl")}
        assert len(answers) == 3 and manifest(run_dir, f"{prefix}_answers")["inputs"]["model"]["key"] == key[model]
        gaps = {g["id"]: g["gap"] for g in read_jsonl(run_dir / "stages" / f"{prefix}_gaps" / "gaps.jsonl")}
        pairs = read_jsonl(run_dir / "stages" / f"{prefix}_pairs" / "preference_set.jsonl")
        assert pairs and all(p["chosen"] == seed[p["id"]]["gold"] and p["rejected"] == answers[p["id"]] for p in pairs)
        assert all(gaps[p["id"]] > -1.0 for p in pairs)
        stage = manifest(run_dir, f"{prefix}_pairs")
        assert stage["config"]["threshold"] == -1.0
        assert stage["inputs"]["gaps"]["key"] == manifest(run_dir, f"{prefix}_gaps")["key"]
    examples = read_jsonl(run_dir / "stages" / "seed_sft" / "examples.jsonl")
    assert [(e["prompt"], e["target"]) for e in examples] == [
        (seed[i]["prompt"], seed[i]["gold"]) for i in list(seed)[:3]
    ]
    starts = {s: manifest(run_dir, s)["inputs"] for s in ("seed_po", "seed_sft_po", "seed_sft_po_multi_epoch")}
    assert starts["seed_po"]["m0"]["key"] == key["m0"] and starts["seed_po"]["preferences"]["key"] == key["seed_pairs"]
    for s in ("seed_sft_po", "seed_sft_po_multi_epoch"):  # setting 3's pairs, from the Seed SFT model
        assert starts[s]["m0"]["key"] == key["seed_sft"] and starts[s]["preferences"]["key"] == key["seed_sft_pairs"]
    steps = {s: manifest(run_dir, s)["counts"]["steps"] for s in starts}
    assert steps["seed_sft_po_multi_epoch"] == 2 * steps["seed_sft_po"]
    assert manifest(run_dir, "seed_sft_po_multi_epoch")["config"]["optimizer"]["num_epochs"] == 2  # method's default


@pytest.mark.parametrize(
    "verdict, training_data", [("logprobs", "accumulated"), ("logprobs", "new"), ("generate", "accumulated")]
)
def test_self_rewarding_starts_from_its_sft_and_judges_with_the_current_model(
    tiny_model, tmp_path, verdict, training_data
):
    """Scores read from probabilities always exist; a random model's written verdicts never parse, and the run stops
    at the pairs, saying why, after judging. M(t) trains from the SFT model on the pairs of iterations 1..t
    (`accumulated`, SynPO's training data) or from M(t-1) on iteration t's (`new`, Yuan et al.'s)."""
    from conftest import run_synpo

    iterations = 2 if verdict == "logprobs" else 1
    args = [
        "experiment=cpu_self_rewarding",
        *tiny(tiny_model),
        "method.prompt_source=seed",
        "method.prompts_per_iteration=2",
        "method.samples_per_prompt=2",
        "method.max_new_tokens.answer=8",
        f"method.judging.verdict={verdict}",
        "method.judging.max_new_tokens=4",
        f"method.iterations={iterations}",
        f"method.training_data={training_data}",
        "method.sft_items=2",
        "method.eft_items=2",
        "method.seed_sft.batch_size=4",
        "method.seed_sft.per_device_batch_size=2",
        "method.seed_sft.max_length=128",
    ]
    result = run_synpo(*args, cwd=tmp_path, home=tmp_path / "home", timeout=600)
    (run_dir,) = (tmp_path / "outputs").glob("*/*")
    counts = manifest(run_dir, "seed_sft")["counts"]
    assert (counts["ift_examples"], counts["eft_examples"]) == (2, 6)
    judged = manifest(run_dir, "iter1/judgments")
    sft_key = manifest(run_dir, "seed_sft")["key"]
    assert judged["inputs"]["judge"]["key"] == sft_key
    if verdict == "logprobs":
        assert result.returncode == 0, result.stderr[-3000:]
        assert judged["counts"]["unscored_answers"] == 0
        assert manifest(run_dir, "iter1/pairs")["counts"]["kept"] == 2
        m1 = manifest(run_dir, "iter1/policy")
        assert m1["inputs"]["m0"]["key"] == sft_key
        # Iteration 2 samples and judges with M1 in both readings.
        assert manifest(run_dir, "iter2/samples")["inputs"]["model"]["key"] == m1["key"]
        assert manifest(run_dir, "iter2/judgments")["inputs"]["judge"]["key"] == m1["key"]
        pairs, m2 = manifest(run_dir, "iter2/pairs"), manifest(run_dir, "iter2/policy")
        added = [manifest(run_dir, f"iter{t}/pairs")["counts"]["added"] for t in (1, 2)]
        if training_data == "accumulated":
            assert m2["inputs"]["m0"]["key"] == sft_key
            assert pairs["inputs"]["previous"]["key"] == manifest(run_dir, "iter1/pairs")["key"]
            assert m2["counts"]["pairs"] == pairs["counts"]["preference_set"] == sum(added)
        else:
            assert m2["inputs"]["m0"]["key"] == m1["key"]
            assert "previous" not in pairs["inputs"]
            assert m2["counts"]["pairs"] == pairs["counts"]["preference_set"] == added[1]
        assert set(json.loads((run_dir / "summary.json").read_text())["models"]) == {"M0", "ift_eft", "M1", "M2"}
        return
    assert result.returncode == 2
    assert "iter1/pairs: no best-vs-worst pair to train on (dropped_fewer_than_two_scored=2)" in result.stderr
    assert judged["counts"]["unparsable"] == judged["counts"]["verdicts"] == 4
    dropped = read_jsonl(run_dir / "stages" / "iter1" / "pairs" / "dropped.jsonl")
    assert [d["reason"] for d in dropped] == ["fewer_than_two_scored"] * 2
