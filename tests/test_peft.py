"""LoRA through peft on a tiny real model: the trainers change only the adapter, the merged model is base + adapter,
DPO's reference is the start model with the adapter disabled; the `peft` group reaches every trainer's stage key,
and qlora without CUDA fails at start-up."""

from __future__ import annotations

import time

import pytest
import torch
from conftest import preference_rows
from datasets import Dataset
from safetensors.torch import load_file
from trl import DPOConfig, DPOTrainer

from synpo import adapters
from synpo.config import OptimizerConfig, PeftConfig, RefinementConfig, SFTConfig
from synpo.models import load_causal_lm, load_tokenizer
from synpo.noise_aware_dpo import NoiseAwareDPOTrainer, token_logps
from synpo.templates import chat
from synpo.training import CHECKPOINTING, dpo, sft, simpo

LORA = PeftConfig(name="lora", adapter="lora", r=4, alpha=8, dropout=0.0)
PAIRS = [
    ("Name a colour.", "Blue is a calm colour of sky and sea.", "no no no"),
    ("Say hello.", "Hello! How can I help you today?", "bye bye bye"),
]
TRAIN = dict(
    learning_rate=5e-3,
    num_epochs=2,
    batch_size=2,
    per_device_batch_size=2,
    warmup_ratio=0.0,
    lr_scheduler="constant",
    max_length=128,
    save_steps=None,
)
LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def train(kind: str, model, out):
    if kind == "simpo":
        return simpo(str(model), preference_rows(PAIRS), OptimizerConfig(**TRAIN), out, peft=LORA)
    rows = [{"prompt": chat(p), "completion": [{"role": "assistant", "content": c}]} for p, c, _ in PAIRS]
    return sft(str(model), rows, SFTConfig(**TRAIN), out, peft=LORA)


@pytest.mark.parametrize("kind", ["simpo", "sft"])
def test_a_lora_trainer_changes_only_the_adapter_and_saves_it_and_the_merged_model(tiny_model, tmp_path, kind):
    stats = train(kind, tiny_model, tmp_path)
    assert stats["adapter"] == "lora" and 0 < stats["trainable_params"] < stats["total_params"] / 10
    adapter = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    assert (tmp_path / "adapter" / "adapter_config.json").is_file() and adapter
    assert all(".lora_A." in k or ".lora_B." in k for k in adapter)
    assert {k.split(".")[-3] for k in adapter} == set(LINEAR)  # all-linear: every projection, not the head
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if ".lora_B." in k)  # B starts at 0: it trained
    base, merged = load_file(tiny_model / "model.safetensors"), load_file(tmp_path / "model" / "model.safetensors")
    assert merged.keys() == base.keys()
    changed = {k for k in base if not torch.equal(base[k], merged[k])}
    assert changed and all(k.split(".")[-2] in LINEAR for k in changed)  # embeddings, norms: untouched


def test_the_merged_model_gives_the_logits_of_base_plus_adapter(tiny_model, tmp_path):
    from peft import PeftModel

    train("simpo", tiny_model, tmp_path)
    ids = load_tokenizer(str(tiny_model))("Name a colour. Blue.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        stacked = PeftModel.from_pretrained(load_causal_lm(str(tiny_model)), str(tmp_path / "adapter"))(ids).logits
        merged = load_causal_lm(str(tmp_path / "model"))(ids).logits
        base = load_causal_lm(str(tiny_model))(ids).logits
    assert torch.allclose(merged, stacked, atol=1e-5)
    assert not torch.allclose(merged, base, atol=1e-3)


@pytest.fixture
def start_model(tiny_model, tmp_path):
    """pi(i-1): a model unlike M0 (the tiny model), saved like a stage's merged model."""
    torch.manual_seed(3)
    model = load_causal_lm(str(tiny_model))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(tmp_path / "start")
    load_tokenizer(str(tiny_model)).save_pretrained(tmp_path / "start")
    return tmp_path / "start"


def test_lora_dpo_references_the_start_model_with_the_adapter_disabled(start_model, tmp_path):
    """No ref_model: TRL's reference forward is the policy with its adapter off, i.e. exactly the start model,
    both in the fused forwards the smoothing reads and in the extrapolated confidence."""
    args = DPOConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=len(PAIRS),
        beta=0.5,
        max_length=128,
        report_to="none",
        dataloader_pin_memory=False,
        bf16=False,
        **{CHECKPOINTING: False},
    )
    trainer = NoiseAwareDPOTrainer(
        model=load_causal_lm(str(start_model)).train(),
        args=args,
        train_dataset=Dataset.from_list(preference_rows(PAIRS)),
        processing_class=load_tokenizer(str(start_model)),
        peft_config=adapters.lora_config(LORA),
        refinement=RefinementConfig(alpha=0.1, percentile=100.0, warmup=0.0),
        extrapolation=0.5,
    )
    assert trainer.ref_model is None
    with torch.no_grad():  # an adapter that has learnt something: policy != reference
        for name, p in trainer.model.named_parameters():
            if ".lora_B." in name:
                p.normal_(0, 0.05)
    trainer.state.max_steps = 10
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    ids, mask = batch["input_ids"], batch["attention_mask"]
    start = load_causal_lm(str(start_model))
    with torch.no_grad():
        expected = token_logps(start(input_ids=ids, attention_mask=mask).logits, ids)
        with trainer._captured_logps(trainer.model) as captured:
            DPOTrainer._compute_loss(trainer, trainer.model, batch, False)
        reference = trainer._reference_logits(trainer.model, input_ids=ids, attention_mask=mask)
    policy_logps, ref_logps = captured
    shift = batch["completion_mask"][:, 1:].bool()
    n = shift.size(1)
    assert torch.allclose(ref_logps[:, -n:][shift], expected[:, -n:][shift], atol=1e-4)
    assert not torch.allclose(policy_logps[:, -n:][shift], expected[:, -n:][shift], atol=1e-2)
    assert torch.allclose(reference, start(input_ids=ids, attention_mask=mask).logits, atol=1e-4)
    trainer.compute_loss(trainer.model, batch)  # the smoothing path runs on these forwards
    assert trainer.pairs_seen == len(PAIRS)


def test_lora_dpo_with_self_refinement_trains_and_merges_onto_its_start(start_model, tmp_path):
    cfg = OptimizerConfig(**{**TRAIN, "num_epochs": 1}, loss="dpo", beta=0.1)
    refinement = RefinementConfig(alpha=0.1, percentile=100.0, warmup=0.0)
    stats = dpo(str(start_model), preference_rows(PAIRS), cfg, tmp_path / "out", refinement=refinement, peft=LORA)
    assert stats["adapter"] == "lora" and stats["pairs_seen"] == len(PAIRS)
    start, merged = load_file(start_model / "model.safetensors"), load_file(tmp_path / "out/model/model.safetensors")
    assert torch.equal(start["model.embed_tokens.weight"], merged["model.embed_tokens.weight"])


def test_qlora_without_cuda_fails_at_start_up_naming_the_key(synpo):
    start = time.monotonic()
    # A model that cannot be had: the peft check comes first, before any model is looked at.
    result = synpo("peft=qlora", "model.source=hub", "model.path=/nonexistent/model", timeout=60)
    assert result.returncode == 2
    assert "peft=qlora (peft.load_in_4bit=true)" in result.stderr and "CUDA" in result.stderr
    assert time.monotonic() - start < 30


def test_lora_settings_and_per_trainer_overrides_reach_the_stage_configs():
    from test_config import composed

    from synpo.methods.recipe import Recipe

    cfg = composed("peft=lora", "+peft.trainers.simpo.learning_rate=0.001", "+peft.trainers.sft.learning_rate=0.002")
    r = Recipe(cfg)
    simpo_cfg = r.training("optimizer", cfg.optimizer)
    assert simpo_cfg["optimizer"]["learning_rate"] == 0.001
    assert simpo_cfg["peft"] == {
        "adapter": "lora",
        "r": 16,
        "alpha": 16,
        "dropout": 0.05,
        "target_modules": "all-linear",
        "load_in_4bit": False,
    }
    assert r.training("sft", cfg.method.generator_sft)["sft"]["learning_rate"] == 0.002
    assert r.training("optimizer", {**cfg.optimizer, "loss": "dpo"})["optimizer"]["learning_rate"] == (
        cfg.optimizer.learning_rate
    )
    full = Recipe(composed()).training("optimizer", cfg.optimizer)
    assert full["peft"] is None and full["optimizer"]["learning_rate"] == cfg.optimizer.learning_rate


@pytest.mark.parametrize(
    "experiment, base, option, simpo_lr, per_device, four_bit",
    [
        ("paper_mistral_lora", "paper_mistral", "lora_mistral", 3e-6, 2, False),
        ("paper_llama3_qlora", "paper_llama3", "qlora_llama3", 6e-6, 1, True),
    ],
)
def test_one_gpu_experiments_are_the_paper_ones_with_a_peft_option(
    experiment, base, option, simpo_lr, per_device, four_bit
):
    from omegaconf import OmegaConf
    from test_config import composed

    from synpo.methods.recipe import Recipe

    cfg, paper = composed(f"experiment={experiment}"), composed(f"experiment={base}")
    assert cfg.peft.name == option and cfg.peft.load_in_4bit == four_bit
    assert OmegaConf.masked_copy(cfg, ["model", "method", "optimizer", "reward"]) == OmegaConf.masked_copy(
        paper, ["model", "method", "optimizer", "reward"]
    )
    r = Recipe(cfg)
    policy, generator = r.training("optimizer", cfg.optimizer), r.training("sft", cfg.method.generator_sft)
    assert policy["optimizer"]["learning_rate"] == simpo_lr and generator["sft"]["learning_rate"] == 2e-4
    assert policy["optimizer"]["batch_size"] == 128 and policy["optimizer"]["per_device_batch_size"] == per_device
    assert policy["peft"]["r"] == 16 and policy["optimizer"]["gradient_checkpointing"]


def test_the_one_gpu_spa_experiment_trains_its_dpo_at_the_handbooks_qlora_rate():
    from test_config import composed

    from synpo.methods.recipe import Recipe

    cfg = composed("experiment=paper_spa_mistral_lora")
    r = Recipe(cfg)
    for node in (cfg.method.seed_dpo, cfg.method.dpo):
        dpo_cfg = r.training("optimizer", node)["optimizer"]
        assert (dpo_cfg["learning_rate"], dpo_cfg["beta"], dpo_cfg["batch_size"]) == (5e-6, 0.1, 32)
    assert cfg.method.refinement == composed("experiment=paper_spa_mistral").method.refinement


@pytest.mark.parametrize(
    "peft, message",
    [
        (PeftConfig(adapter="dora"), "peft.adapter='dora'"),
        (PeftConfig(adapter="lora", r=0), "peft.r=0"),
        (PeftConfig(adapter="lora", trainers={"ppo": {}}), "peft.trainers.ppo"),
        (PeftConfig(adapter="lora", trainers={"simpo": {"lr": 1e-5}}), "peft.trainers.simpo.lr"),
        (PeftConfig(load_in_4bit=True), "peft.adapter=lora"),
    ],
)
def test_bad_peft_settings_fail_at_start_up_naming_the_key(peft, message):
    """The start-up's two checks of the group: its fields' ranges (synpo.config), then adapters.check's rules."""
    from synpo.config import check_object
    from synpo.errors import ConfigError

    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        check_object(peft, "peft")
        adapters.check(peft)
