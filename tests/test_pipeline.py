"""One whole SynPO iteration on the real embedded model (SmolLM2-135M), through the `synpo` command."""

from __future__ import annotations

import json

import pytest

from synpo.io import read_jsonl

pytestmark = pytest.mark.slow

TINY = [
    "logger=none",
    "evaluation=none",
    "method.iterations=1",
    "method.prompts_per_iteration=6",
    "method.pairs_per_iteration=4",
    "method.generator_seed_items=8",
    "method.improver_seed_items=8",
    "method.max_new_tokens.question=32",
    "method.max_new_tokens.answer=32",
    "method.max_new_tokens.rewrite=40",
    "reward.threshold=-1.0",  # keep every pair: the point here is the plumbing, not the filter
]

STAGES = [
    "seed_set",
    "m0",
    "corpus",
    "generator",
    "iter1/keywords",
    "iter1/prompts",
    "iter1/seed_answers",
    "iter1/seed_gaps",
    "iter1/improver",
    "iter1/policy_answers",
    "iter1/m0_answers",
    "iter1/rewrites",
    "iter1/pair_gaps",
    "iter1/pairs",
    "iter1/audit",
    "iter1/policy",
]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    from conftest import run_synpo

    cwd = tmp_path_factory.mktemp("pipeline")
    result = run_synpo(*TINY, cwd=cwd, home=cwd / "home")
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (cwd / "outputs").glob("*/*")
    return cwd, run_dir, result


def test_one_iteration_leaves_every_stage_and_the_checkpoint(first_run):
    _, run_dir, result = first_run
    for stage in STAGES:
        manifest = json.loads((run_dir / "stages" / stage / "manifest.json").read_text())
        assert manifest["seconds"] >= 0 and manifest["files"]
    m1 = run_dir / "models" / "M1"
    assert (m1 / "model.safetensors").is_file() and (m1 / "config.json").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [s["label"] for s in summary["stages"]] == STAGES
    assert "iter1/pairs" in result.stdout and "Models:" in result.stdout


def test_stage_outputs_are_consistent(first_run):
    _, run_dir, _ = first_run
    stages = run_dir / "stages"
    prompts = read_jsonl(stages / "iter1/prompts/prompts.jsonl")
    dropped = read_jsonl(stages / "iter1/prompts/dropped.jsonl")
    assert len(prompts) + len(dropped) == 6
    assert all(p["prompt"] and len(p["keywords"]) == 3 for p in prompts)
    rewrites = read_jsonl(stages / "iter1/rewrites/rewrites.jsonl")
    assert [r["id"] for r in rewrites] == [p["id"] for p in prompts]
    pairs = read_jsonl(stages / "iter1/pairs/preference_set.jsonl")
    assert 0 < len(pairs) <= 4
    y0 = {r["id"]: r["answer"] for r in read_jsonl(stages / "iter1/m0_answers/answers.jsonl")}
    chosen = {r["id"]: r["rewrite"] for r in rewrites}
    for p in pairs:
        assert p["chosen"] == chosen[p["id"]] and p["rejected"] == y0[p["id"]]
        assert p["gap"] == pytest.approx(p["chosen_score"] - p["rejected_score"])
    counts = json.loads((stages / "iter1/pairs/manifest.json").read_text())["counts"]
    assert counts["candidates"] == len(rewrites)


def test_a_rerun_reuses_every_stage(first_run):
    from conftest import rerun

    cwd, _, _ = first_run
    run_dir = rerun(*TINY, cwd=cwd, home=cwd / "home")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert all(s["reused"] for s in summary["stages"])


def test_a_beta_change_reuses_everything_before_simpo(first_run):
    from conftest import rerun

    cwd, _, _ = first_run
    run_dir = rerun(*TINY, "optimizer.beta=4", cwd=cwd, home=cwd / "home")
    reused = {s["label"]: s["reused"] for s in json.loads((run_dir / "summary.json").read_text())["stages"]}
    assert reused.pop("iter1/policy") is False
    assert all(reused.values())


def test_per_iteration_beta_search_trains_one_model_per_beta_and_keeps_the_best(first_run):
    from conftest import rerun

    cwd, _, _ = first_run
    run_dir = rerun(*TINY, "method.beta_grid=[2,4]", "method.selection_items=3", cwd=cwd, home=cwd / "home")
    selection = json.loads((run_dir / "stages" / "iter1" / "select_beta" / "selection.json").read_text())
    assert [c["beta"] for c in selection["candidates"]] == [2.0, 4.0]
    assert all(c["n"] == 3 and 0 <= c["win_rate"] <= 1 for c in selection["candidates"])
    best = selection["best"]["beta"]
    m1 = (run_dir / "models" / "M1").resolve()
    assert m1 == (run_dir / "stages" / "iter1" / f"policy_beta{best:g}" / "model").resolve()


def test_a_failing_stage_keeps_the_finished_ones(first_run):
    from conftest import run_synpo

    cwd, _, _ = first_run
    # No seed item can beat its answer by 2 on a [0, 1] score: the improver stage must refuse to train.
    result = run_synpo(*TINY[:-1], "reward.threshold=2.0", cwd=cwd, home=cwd / "home")
    assert result.returncode == 2
    assert "reward.threshold=2.0" in result.stderr
    run_dir = sorted((cwd / "outputs").glob("*/*"))[-1]
    assert (run_dir / "stages" / "iter1" / "seed_gaps" / "gaps.jsonl").is_file()


def test_a_run_killed_mid_stage_resumes_to_the_same_artifacts(first_run, tmp_path):
    import os
    import signal
    import subprocess
    import time

    from conftest import SHARED_MODELS, SYNPO, rerun

    _, reference_dir, _ = first_run
    home = tmp_path / "home"
    env = {**os.environ, "SYNPO_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [str(SYNPO), f"paths.models={SHARED_MODELS}", *TINY],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    while not list((home / "stages").glob("response_improver/*.partial")) and time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.2)
    time.sleep(3)  # mid-way through the improver's training
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    improver = home / "stages" / "response_improver"
    assert [p.name.endswith(".partial") for p in improver.iterdir() if p.is_dir()] == [True]  # no finished entry

    run_dir = rerun(*TINY, cwd=tmp_path, home=home)
    for stage in STAGES:
        ours = json.loads((run_dir / "stages" / stage / "manifest.json").read_text())
        reference = json.loads((reference_dir / "stages" / stage / "manifest.json").read_text())
        assert ours["key"] == reference["key"], stage
        data = {f: m["sha256"] for f, m in ours["files"].items() if f.endswith(".jsonl") or f.endswith(".json")}
        expected = {f: m["sha256"] for f, m in reference["files"].items() if f in data}
        assert data == expected, stage
