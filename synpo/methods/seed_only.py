"""Table 7's ablations: what the seed data alone gives, without SynPO's synthetic prompts and pairs.

`method.variants` picks any of (one run trains them all, sharing what they have in common):
- `sft` (Seed SFT): SFT from M0 on the seed prompts with their gold answers (`seed_sft`) -> model `seed_sft`;
- `po` (Seed PO): SimPO from M0 on pairs chosen = gold, rejected = M0's answer to the same seed prompt
  (`seed_answers`, `seed_pairs`, `seed_po`) -> `seed_po`;
- `sft_po` (Seed SFT + PO): the same pairs, SimPO from the Seed SFT model (`seed_sft_po`) -> `seed_sft_po`;
- `multi_epoch_po`: Seed PO trained for `method.multi_epochs` epochs instead of `optimizer.num_epochs`, the
  seed's pairs seen as often as SynPO's iterations would see new ones (`seed_po_multi_epoch`).
All use the first `method.seed_items` seed training items; SimPO's settings are the `optimizer` group's.

    synpo experiment=cpu_seed_only logger=none
    synpo experiment=paper_seed_only_mistral method.variants=[po]
"""

from __future__ import annotations

from omegaconf import DictConfig

from synpo.config import SEED_ONLY_VARIANTS
from synpo.errors import ConfigError
from synpo.methods.baselines import train_simpo
from synpo.methods.recipe import Recipe, seeds_and_m0
from synpo.stage import Artifact, Runner
from synpo.stages import answer, gold_pairs, seed_sft


def check(cfg: DictConfig) -> None:
    m = cfg.method
    unknown = [v for v in m.variants if v not in SEED_ONLY_VARIANTS]
    if unknown or not m.variants:
        raise ConfigError(f"method.variants={list(m.variants)}: choose among {list(SEED_ONLY_VARIANTS)}")
    if m.seed_items is not None and m.seed_items < 1:
        raise ConfigError(f"method.seed_items={m.seed_items} must be at least 1 (or null for the whole seed set)")
    if m.multi_epochs <= 0:
        raise ConfigError(f"method.multi_epochs={m.multi_epochs} must be positive")


def run(cfg: DictConfig, runner: Runner) -> dict[str, Artifact]:
    """Returns M0 and one model per variant: seed_sft, seed_po, seed_sft_po, seed_po_multi_epoch."""
    check(cfg)
    r, m, seed, variants = Recipe(cfg), cfg.method, cfg.seed, set(cfg.method.variants)
    seeds, m0 = seeds_and_m0(cfg, runner)
    policies = {"M0": m0}
    if variants & {"sft", "sft_po"}:
        sft_model = runner.run(
            "seed_sft",
            seed_sft.run,
            config={**r.training("sft", m.sft), "items": m.seed_items, "eft_items": 0, "seed": seed, **r.common},
            inputs={"seed": seeds, "model": m0},
        )
        if "sft" in variants:
            policies["seed_sft"] = sft_model
    if variants & {"po", "sft_po", "multi_epoch_po"}:
        answers = runner.run(
            "seed_answers",
            answer.run,
            config={"prompts_file": "train.jsonl", "limit": m.seed_items, **r.generating("answer", seed)},
            inputs={"model": m0, "prompts": seeds},
        )
        pairs = runner.run("seed_pairs", gold_pairs.run, inputs={"seed": seeds, "answers": answers})
        if "po" in variants:
            policies["seed_po"] = train_simpo(cfg, runner, "seed_po", m0, pairs)
        if "sft_po" in variants:
            policies["seed_sft_po"] = train_simpo(cfg, runner, "seed_sft_po", sft_model, pairs)
        if "multi_epoch_po" in variants:
            policies["seed_po_multi_epoch"] = train_simpo(
                cfg, runner, "seed_po_multi_epoch", m0, pairs, num_epochs=m.multi_epochs
            )
    return policies
