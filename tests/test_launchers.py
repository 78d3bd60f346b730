"""Sweeps through Hydra launchers: a joblib multirun whose jobs share the stage cache, and the paper's Slurm launch."""

from __future__ import annotations

import json

from hydra import compose, initialize_config_dir

from synpo.cli import CONF_DIR

# One cheap iteration on the tiny random model: the point is the launcher and the shared cache, not the text.
CHEAP = [
    "logger=none",
    "evaluation=none",
    "threads=1",
    "method.iterations=1",
    "method.prompts_per_iteration=6",
    "method.pairs_per_iteration=4",
    "method.generator_seed_items=8",
    "method.improver_seed_items=8",
    "method.max_new_tokens.question=16",
    "method.max_new_tokens.answer=16",
    "method.max_new_tokens.rewrite=16",
    "reward.threshold=-1.0",
]


def test_a_joblib_beta_sweep_runs_both_jobs_and_computes_shared_stages_once(synpo, tiny_model):
    model = [f"model.path={tiny_model}", "model.source=hub", "model.name=tiny"]
    # hydra.mode=MULTIRUN is `-m` (run_synpo puts its own override first, where `-m` cannot follow).
    result = synpo(
        "hydra.mode=MULTIRUN", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "optimizer.beta=2,4", *model, *CHEAP
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Joblib.Parallel" in result.stderr + result.stdout
    (sweep,) = (synpo.cwd / "multirun").glob("*/*")
    jobs = [json.loads((sweep / str(n) / "summary.json").read_text())["stages"] for n in (0, 1)]
    for n, beta in enumerate((2, 4)):
        assert f"optimizer.beta={beta}" in (sweep / str(n) / ".hydra" / "overrides.yaml").read_text()
    labels = [s["label"] for s in jobs[0]]
    assert labels == [s["label"] for s in jobs[1]] and "iter1/policy_answers" in labels
    shared = set()
    for a, b in zip(*jobs, strict=True):
        if a["label"] == "iter1/policy":
            # Only SimPO depends on beta: one model per job.
            assert a["key"] != b["key"] and not a["reused"] and not b["reused"]
        else:
            # Everything else, generation included, is one cache entry for both jobs.
            assert a["key"] == b["key"] and a["path"] == b["path"], a["label"]
            shared.add(a["key"])
    # Each entry was computed by exactly one job (iteration 1's m0_answers is policy_answers' entry, reused at once).
    computed = [s["key"] for job in jobs for s in job if not s["reused"]]
    assert len(computed) == len(set(computed)) and shared <= set(computed)
    generated = [
        s["label"] for s in jobs[0] if s["label"] in ("iter1/prompts", "iter1/policy_answers", "iter1/rewrites")
    ]
    assert len(generated) == 3


def composed_with_hydra(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


def test_the_paper_recipe_is_one_slurm_launch_of_both_models_on_8_gpu_nodes():
    cfg = composed_with_hydra("+recipe=paper", "experiment=paper_mistral", "hydra.launcher.partition=gpu")
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.nodes, launcher.tasks_per_node) == ("gpu", 8, 1, 1)
    assert (launcher.timeout_min, launcher.mem_gb) == (2880, 640) and launcher.max_num_timeout > 0
    assert cfg.hydra.sweeper.params == {"experiment": "paper_mistral,paper_llama3"}
    assert cfg.method.beta_grid == [2, 4, 6, 8, 10, 12] and cfg.method.iterations == 4
    assert cfg.distributed.name == "deepspeed_zero3" and cfg.distributed.processes_per_machine == 8
    assert (cfg.generation.backend, cfg.generation.data_parallel_size) == ("vllm", 8)
    # 128 = 2 per device x 8 GPUs x 8 accumulation steps; the SFT batch of 32 = 2 x 8 x 2.
    assert (cfg.optimizer.batch_size, cfg.optimizer.per_device_batch_size) == (128, 2)


def test_one_machine_launchers_compose():
    for launcher, target in (("submitit_local", "LocalLauncher"), ("joblib", "JoblibLauncher")):
        cfg = composed_with_hydra(f"hydra/launcher={launcher}")
        assert cfg.hydra.launcher._target_.endswith(target)


def test_every_trainer_batch_of_the_paper_recipe_divides_over_its_8_gpus():
    from synpo import distributed
    from synpo.cli import _trainer_nodes

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["+recipe=paper", "experiment=paper_llama3"])
    d = distributed.configure(cfg.distributed)
    try:
        steps = {
            key: distributed.check_batch(key, n.batch_size, n.per_device_batch_size, d)
            for key, n in _trainer_nodes(cfg)
        }
    finally:
        distributed.configure(distributed.DistributedConfig())
    assert steps == {"optimizer": 8, "method.generator_sft": 2, "method.improver_sft": 2}
