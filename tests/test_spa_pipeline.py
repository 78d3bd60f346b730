"""One tiny SPA iteration on the real embedded model (SmolLM2-135M), through the `synpo` command."""

from __future__ import annotations

import json

import pytest

from synpo.io import read_jsonl, write_jsonl

pytestmark = pytest.mark.slow

TINY = [
    "experiment=cpu_demo_spa",
    "logger=none",
    "evaluation=none",
    "method.iterations=1",
    "method.prompts_per_iteration=[4]",
    "method.max_new_tokens=16",
    "method.data.seed_pairs=4",
    "method.seed_dpo.batch_size=4",
    "method.seed_dpo.max_length=128",
    "method.dpo.batch_size=2",
    "method.dpo.per_device_batch_size=2",
    "method.dpo.max_length=128",
    "method.refinement.percentile=100",  # after the warm-up, every pair but the most confident one is smoothed
]

STAGES = [
    "m0",
    "seed_pairs",
    "iter1/prompts",
    "seed_dpo",
    "iter1/answers",
    "iter1/label_gaps",
    "iter1/pairs",
    "iter1/policy",
]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    from conftest import run_synpo

    cwd = tmp_path_factory.mktemp("spa")
    result = run_synpo(*TINY, cwd=cwd, home=cwd / "home")
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (cwd / "outputs").glob("*/*")
    return cwd, run_dir


def counts(run_dir, stage: str) -> dict:
    return json.loads((run_dir / "stages" / stage / "manifest.json").read_text())["counts"]


def test_one_iteration_labels_its_own_answers_and_trains_on_them(first_run):
    _, run_dir = first_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [s["label"] for s in summary["stages"]] == STAGES
    assert set(summary["models"]) == {"M0", "seed_dpo", "M1"}
    for name in ("seed_dpo", "M1"):
        assert (run_dir / "models" / name / "model.safetensors").is_file()
    assert counts(run_dir, "seed_dpo")["pairs"] == 4 and counts(run_dir, "seed_dpo")["steps"] == 1

    stages = run_dir / "stages"
    answers = {r["id"]: r for r in read_jsonl(stages / "iter1/answers/answers.jsonl")}
    pairs = read_jsonl(stages / "iter1/pairs/pairs.jsonl")
    labelled = counts(run_dir, "iter1/pairs")
    assert labelled["labelled"] == len(pairs) > 0
    assert labelled["labelled"] + labelled["dropped_ties"] == counts(run_dir, "iter1/answers")["answered"]
    for p in pairs:
        both = {answers[p["id"]]["answer_a"], answers[p["id"]]["answer_b"]}
        assert {p["chosen"], p["rejected"]} == both
        assert p["chosen_score"] > p["rejected_score"]

    policy = counts(run_dir, "iter1/policy")
    assert policy["pairs"] == policy["pairs_seen"] == len(pairs)
    if policy["steps"] >= 2:  # the first step is in the warm-up
        assert policy["pairs_smoothed"] >= 1


def test_a_rerun_reuses_every_stage(first_run):
    from conftest import rerun

    cwd, _ = first_run
    run_dir = rerun(*TINY, cwd=cwd, home=cwd / "home")
    assert all(s["reused"] for s in json.loads((run_dir / "summary.json").read_text())["stages"])


def test_a_seed_without_chosen_answers_fails_before_training(first_run, tmp_path):
    from conftest import run_synpo

    cwd, _ = first_run
    bad = tmp_path / "seed.jsonl"
    write_jsonl(bad, [{"id": "x", "prompt": "Hi?", "rejected": "No."}])
    result = run_synpo(*TINY, f"method.data.seed_file={bad}", cwd=cwd, home=cwd / "home")
    assert result.returncode == 2
    assert f"{bad}:1: field 'chosen'" in result.stderr
    run_dir = sorted((cwd / "outputs").glob("*/*"))[-1]
    assert not (run_dir / "stages" / "seed_dpo").exists()
