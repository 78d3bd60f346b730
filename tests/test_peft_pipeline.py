"""A SynPO iteration with `peft=lora` through the `synpo` command on a tiny random M0: every trainer saves an adapter
and the merged model the later stages generate with; a rerun reuses every stage; `peft=none` reuses the stages before
the first training and none of the LoRA ones."""

from __future__ import annotations

import json

from test_baselines_pipeline import manifest, tiny

ITERATION = [
    "method.iterations=1",
    "method.prompt_source=seed",
    "method.prompts_per_iteration=3",
    "method.pairs_per_iteration=2",
    "method.improver_seed_items=3",
    "method.max_new_tokens.answer=8",
    "method.max_new_tokens.rewrite=8",
    "method.improver_sft.batch_size=2",
    "method.improver_sft.per_device_batch_size=2",
    "method.improver_sft.max_length=128",
    "reward.threshold=-1.0",
    "reward.max_length=128",
]
TRAINED = ("iter1/improver", "iter1/policy")


def run(tmp_path, *args: str):
    from conftest import run_synpo

    result = run_synpo(*args, cwd=tmp_path, home=tmp_path / "home", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = sorted((tmp_path / "outputs").glob("*/*"))[-1]
    return run_dir, {s["label"]: s for s in json.loads((run_dir / "summary.json").read_text())["stages"]}


def test_a_lora_iteration_generates_with_its_merged_models_and_never_shares_entries_with_full_fine_tuning(
    tiny_model, tmp_path
):
    args = [*tiny(tiny_model), *ITERATION]
    run_dir, stages = run(tmp_path, *args, "peft=lora")
    for label in TRAINED:
        m = manifest(run_dir, label)
        assert m["counts"]["adapter"] == "lora" and m["config"]["peft"]["adapter"] == "lora"
        folder = run_dir / "stages" / label
        assert (folder / "adapter" / "adapter_model.safetensors").is_file()
        assert (folder / "model" / "model.safetensors").is_file()
    # The improver's merged model wrote the chosen answers.
    assert manifest(run_dir, "iter1/rewrites")["inputs"]["improver"]["key"] == stages["iter1/improver"]["key"]
    assert (run_dir / "stages" / "iter1/rewrites" / "rewrites.jsonl").read_text().strip()

    _, again = run(tmp_path, *args, "peft=lora")
    assert all(s["reused"] for s in again.values())

    _, full = run(tmp_path, *args, "peft=none")
    for label in TRAINED:
        assert not full[label]["reused"] and full[label]["key"] != stages[label]["key"]
        assert full[label]["counts"]["adapter"] == "none"
    assert all(full[s]["reused"] for s in ("seed_set", "m0", "iter1/seed_answers", "iter1/seed_gaps"))
    assert not full["iter1/rewrites"]["reused"]  # written by the full improver, not the LoRA one


def test_a_lora_spa_iteration_trains_pi1_on_pi0s_merged_weights(tiny_model, tmp_path):
    """SPA's DPO under LoRA: the seed DPO and iteration 1's noise-aware DPO train adapters; pi1 starts from (and is
    referenced to) pi0's merged model, which also answered and labelled iteration 1's prompts."""
    run_dir, stages = run(
        tmp_path,
        "experiment=cpu_demo_spa",
        "model.source=hub",
        f"model.path={tiny_model}",
        "model.name=tiny",
        "logger=none",
        "evaluation=none",
        "peft=lora",
        "method.iterations=1",
        "method.prompts_per_iteration=[4]",
        "method.max_new_tokens=8",
        "method.data.seed_pairs=4",
        "method.seed_dpo.batch_size=4",
        "method.seed_dpo.max_length=128",
        "method.dpo.batch_size=2",
        "method.dpo.per_device_batch_size=2",
        "method.dpo.max_length=128",
        "method.refinement.percentile=100",
    )
    for label in ("seed_dpo", "iter1/policy"):
        assert stages[label]["counts"]["adapter"] == "lora"
        assert (run_dir / "stages" / label / "adapter" / "adapter_config.json").is_file()
    policy = manifest(run_dir, "iter1/policy")
    assert policy["inputs"]["model"]["key"] == stages["seed_dpo"]["key"]
    assert policy["counts"]["pairs_seen"] > 0
    assert manifest(run_dir, "iter1/answers")["inputs"]["model"]["key"] == stages["seed_dpo"]["key"]
    label_reward = manifest(run_dir, "iter1/label_gaps")["config"]["reward"]
    assert label_reward["model"].endswith(f"spa_dpo/{stages['seed_dpo']['key']}/model")  # merged
