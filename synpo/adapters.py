"""LoRA and QLoRA for every trainer (the `peft` group), through peft, the library TRL's trainers take.

A training stage under `peft.adapter=lora` hands TRL a `peft_config`: TRL wraps the model, trains the adapter only,
and, for DPO without a `ref_model`, computes the reference with the adapter disabled (the base, no second copy of the
weights). The stage saves the adapter (`<out>/adapter`: adapter_config.json, adapter_model.safetensors) and the base
with the adapter merged into it (`<out>/model`), the full model every later stage loads: the generation backends, the
scorers, and the next trainer, so that an adapter always sits on the model it was trained from (for SPA, pi(i-1)'s
merged weights: the reference is then pi(i-1) itself, as in full fine-tuning). Under QLoRA the base is loaded in 4
bits for training; the adapter is merged into the base at `model.dtype` (16-bit), the usual way to merge a QLoRA
adapter.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

from synpo.config import PEFT_TRAINERS, OptimizerConfig, PeftConfig
from synpo.errors import ConfigError

QLORA_INSTALL = "pip install 'synpo[qlora]'"


def enabled(cfg) -> bool:
    return cfg.adapter != "none"


def check(cfg) -> None:
    """Start-up checks of the `peft` group that its fields' ranges cannot express (before any model loads); the
    message names the key."""
    if not enabled(cfg):
        if cfg.load_in_4bit:
            raise ConfigError("peft.load_in_4bit=true quantises the base under an adapter: set peft.adapter=lora")
        return
    fields = {f.name for f in dataclasses.fields(OptimizerConfig)}
    for trainer, overrides in cfg.trainers.items():
        if trainer not in PEFT_TRAINERS:
            raise ConfigError(f"peft.trainers.{trainer}: the trainers are {list(PEFT_TRAINERS)}")
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ConfigError(f"peft.trainers.{trainer}.{unknown[0]}: not a trainer setting ({sorted(fields)})")
    if cfg.load_in_4bit:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                f"peft={cfg.name} (peft.load_in_4bit=true) loads the base weights in 4 bits through bitsandbytes, "
                "which needs a CUDA GPU, and none is visible here: choose peft=lora, or run on a GPU"
            )
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError(f"peft={cfg.name} (peft.load_in_4bit=true) needs bitsandbytes: {QLORA_INSTALL}")


def with_overrides(cfg, trainer: dict) -> dict:
    """A trainer's settings with the option's `peft.trainers` overrides for it: `sft` for an SFT trainer (no `loss`),
    else its loss (`simpo`, `dpo`). Full fine-tuning keeps them as they are."""
    if not enabled(cfg):
        return dict(trainer)
    return {**trainer, **cfg.trainers.get(trainer.get("loss", "sft"), {})}


def settings(cfg) -> dict | None:
    """What a training stage's config (so its cache key) holds: the adapter's settings, None for full fine-tuning.
    The option's name and its trainer overrides are left out (the overrides are in the trainer's own settings)."""
    if not enabled(cfg):
        return None
    if dataclasses.is_dataclass(cfg):
        values = dataclasses.asdict(cfg)
    else:
        from omegaconf import OmegaConf

        values = OmegaConf.to_container(cfg, resolve=True)
    del values["name"], values["trainers"]
    if not values["load_in_4bit"]:
        for key in ("quant_type", "double_quant", "compute_dtype"):
            del values[key]
    return values


def from_settings(values: dict | None) -> PeftConfig | None:
    return None if values is None else PeftConfig(**values)


def lora_config(cfg: PeftConfig):
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=cfg.target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )


def load_kwargs(cfg: PeftConfig | None) -> dict:
    """`from_pretrained` arguments of the model a trainer trains: 4-bit weights on this process's GPU for QLoRA."""
    if cfg is None or not cfg.load_in_4bit:
        return {}
    from accelerate import PartialState
    from transformers import BitsAndBytesConfig

    from synpo.models import torch_dtype

    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=cfg.quant_type,
        bnb_4bit_use_double_quant=cfg.double_quant,
        bnb_4bit_compute_dtype=torch_dtype(cfg.compute_dtype),
    )
    return {"quantization_config": quantization, "device_map": {"": PartialState().local_process_index}}


def merge(base: str, adapter: Path, out: Path, dtype: str) -> None:
    """The base at `dtype` with the adapter added into its weights, saved as a plain model."""
    from peft import PeftModel

    from synpo.models import load_causal_lm

    model = PeftModel.from_pretrained(load_causal_lm(base, dtype), str(adapter)).merge_and_unload()
    model.save_pretrained(str(out))


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts; ZeRO-3's partitioned parameters by their full size (`ds_numel`). Under
    QLoRA a 4-bit weight counts as stored (two values per element)."""
    sizes = [(getattr(p, "ds_numel", p.numel()), p.requires_grad) for p in model.parameters()]
    return sum(n for n, trainable in sizes if trainable), sum(n for n, _ in sizes)
