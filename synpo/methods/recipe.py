"""The config slices the methods hand to their stages, named once."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from synpo import adapters
from synpo.stage import Artifact, Runner
from synpo.stages import base_model, seed_set


def plain(node) -> dict:
    return OmegaConf.to_container(node, resolve=True)


@dataclass
class Recipe:
    """The config slices stages depend on, named once."""

    cfg: DictConfig

    @property
    def common(self) -> dict:
        return {"dtype": self.cfg.model.dtype, "system_prompt": self.cfg.model.system_prompt}

    def sampling(self, kind: str, seed: int) -> dict:
        g = self.cfg.generation
        tokens = self.cfg.method.max_new_tokens[kind]
        return {"max_new_tokens": tokens, "temperature": g.temperature, "top_p": g.top_p, "seed": seed}

    @property
    def reward(self) -> dict:
        # The threshold only matters to the filters: leaving it out lets threshold sweeps share scores.
        return {k: v for k, v in plain(self.cfg.reward).items() if k != "threshold"}

    def training(self, key: str, settings) -> dict:
        """A training stage's trainer settings under `key` (`sft`, or `optimizer` for SimPO / DPO) with the `peft`
        option's overrides for that trainer (`peft.trainers.<sft|simpo|dpo>`), and the adapter's settings (None:
        full fine-tuning) under `peft`: both are in the stage's cache key."""
        values = plain(settings) if isinstance(settings, DictConfig) else dict(settings)
        peft = self.cfg.peft
        return {key: adapters.with_overrides(peft, values), "peft": adapters.settings(peft)}

    def generating(self, kind: str, seed: int) -> dict:
        return {"generation": plain(self.cfg.generation), "sampling": self.sampling(kind, seed), **self.common}


def m0_of(cfg: DictConfig, runner: Runner) -> Artifact:
    """The starting model M0 (stage `m0`), every method's."""
    return runner.run("m0", base_model.run, config={"model": plain(cfg.model), "models_dir": cfg.paths.models})


def seeds_and_m0(cfg: DictConfig, runner: Runner) -> tuple[Artifact, Artifact]:
    """The seed set (stage `seed_set`) and M0, where the seed-based methods start."""
    return runner.run("seed_set", seed_set.run, config={"data": plain(cfg.data)}), m0_of(cfg, runner)
