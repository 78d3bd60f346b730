"""What the paper's baselines share with SynPO and with each other: sampling n answers, and SimPO training (the
prompts each iteration samples on are `prompt_sources`')."""

from __future__ import annotations

from omegaconf import DictConfig

from synpo.errors import DataError
from synpo.methods.prompt_sources import Prompts
from synpo.methods.recipe import Recipe, plain
from synpo.stage import Artifact, Runner
from synpo.stages import answer, simpo


def sample(cfg: DictConfig, runner: Runner, label: str, model: Artifact, prompts: Prompts, seed: int) -> Artifact:
    """`model` answers each prompt `method.samples_per_prompt` times (the `answer` stage; `samples` in each row)."""
    source, file, limit = prompts
    config = {"prompts_file": file, "limit": limit, **Recipe(cfg).generating("answer", seed)}
    config["sampling"]["n"] = cfg.method.samples_per_prompt
    return runner.run(label, answer.run, config=config, inputs={"model": model, "prompts": source})


def train_simpo(cfg: DictConfig, runner: Runner, label: str, start: Artifact, preferences: Artifact, **overrides):
    """SimPO from `start` on `preferences` (its `preference_set.jsonl`), with the `optimizer` settings."""
    r = Recipe(cfg)
    config = {**r.training("optimizer", {**plain(cfg.optimizer), **overrides}), "seed": cfg.seed, **r.common}
    return runner.run(label, simpo.run, config=config, inputs={"m0": start, "preferences": preferences})


def require_pairs(pairs: Artifact, label: str) -> Artifact:
    """Stop, with the reasons, when an iteration leaves nothing to train on (e.g. none of a weak judge's verdicts
    parsed); the pairs stage's `dropped.jsonl` holds every prompt that gave no pair."""
    counts = pairs.counts
    if not counts["preference_set"]:
        reasons = ", ".join(f"{k}={v}" for k, v in counts.items() if k.startswith("dropped_")) or "no prompts"
        raise DataError(f"{label}: no best-vs-worst pair to train on ({reasons}); see stages/{label}/dropped.jsonl")
    return pairs
