"""Table 7's ablations: what the seed data alone gives, without SynPO's synthetic prompts and pairs.

`method.variants` picks any of (one run trains them all, sharing what they have in common):
- `sft` (Seed SFT): SFT from M0 on the seed prompts with their gold answers (`seed_sft`) -> model `seed_sft`;
- `po` (Seed PO): SimPO from M0 on pairs chosen = gold, rejected = M0's answer to the same seed prompt
  (`seed_answers`, `seed_gaps`, `seed_pairs`, `seed_po`) -> `seed_po`;
- `sft_po` (Seed SFT + PO, "a model finetuned on seed data, then preference data from the model output and gold"):
  SimPO from the Seed SFT model on pairs chosen = gold, rejected = the Seed SFT model's own answer
  (`seed_sft_answers`, `seed_sft_gaps`, `seed_sft_pairs`, `seed_sft_po`) -> `seed_sft_po`;
- `multi_epoch_po` (Seed SFT + PO, multi-epoch): the same pairs from the same Seed SFT model, trained for
  `method.multi_epochs` epochs instead of `optimizer.num_epochs` (the paper chose 2 over 3)
  -> `seed_sft_po_multi_epoch`.
The pairs of settings 2-4 are kept when the reward prefers the gold answer by more than `reward.threshold`, as SynPO
filters its pairs (Appendix D). All use the first `method.seed_items` seed training items; SimPO's settings are the
`optimizer` group's.

    synpo experiment=cpu_seed_only logger=none
    synpo experiment=paper_seed_only_mistral method.variants=[po]
"""

from __future__ import annotations

from omegaconf import DictConfig

from synpo.methods.baselines import require_pairs, train_simpo
from synpo.methods.recipe import Recipe, seeds_and_m0
from synpo.stage import Artifact, Runner
from synpo.stages import answer, gold_pairs, reward_gap, seed_sft


def run(cfg: DictConfig, runner: Runner) -> dict[str, Artifact]:
    """Returns M0 and one model per variant: seed_sft, seed_po, seed_sft_po, seed_sft_po_multi_epoch."""
    r, m, seed, variants = Recipe(cfg), cfg.method, cfg.seed, set(cfg.method.variants)
    seeds, m0 = seeds_and_m0(cfg, runner)

    def gold_over(prefix: str, model: Artifact) -> Artifact:
        """Gold vs `model`'s answer on the seed prompts, filtered by the reward gap."""
        answers = runner.run(
            f"{prefix}_answers",
            answer.run,
            config={"prompts_file": "train.jsonl", "limit": m.seed_items, **r.generating("answer", seed)},
            inputs={"model": model, "prompts": seeds},
        )
        gaps = runner.run(
            f"{prefix}_gaps",
            reward_gap.run,
            config={"chosen": ("train.jsonl", "gold"), "rejected": ("answers.jsonl", "answer"), "reward": r.reward}
            | r.common,
            inputs={"chosen": seeds, "rejected": answers, "m0": m0},
        )
        pairs = runner.run(
            f"{prefix}_pairs",
            gold_pairs.run,
            config={"threshold": cfg.reward.threshold},
            inputs={"seed": seeds, "answers": answers, "gaps": gaps},
        )
        return require_pairs(pairs, f"{prefix}_pairs")

    policies = {"M0": m0}
    if variants & {"sft", "sft_po", "multi_epoch_po"}:
        sft_model = runner.run(
            "seed_sft",
            seed_sft.run,
            config={**r.training("sft", m.sft), "items": m.seed_items, "eft_items": 0, "seed": seed, **r.common},
            inputs={"seed": seeds, "model": m0},
        )
        if "sft" in variants:
            policies["seed_sft"] = sft_model
    if "po" in variants:
        policies["seed_po"] = train_simpo(cfg, runner, "seed_po", m0, gold_over("seed", m0))
    if variants & {"sft_po", "multi_epoch_po"}:
        pairs = gold_over("seed_sft", sft_model)
        if "sft_po" in variants:
            policies["seed_sft_po"] = train_simpo(cfg, runner, "seed_sft_po", sft_model, pairs)
        if "multi_epoch_po" in variants:
            policies["seed_sft_po_multi_epoch"] = train_simpo(
                cfg, runner, "seed_sft_po_multi_epoch", sft_model, pairs, num_epochs=m.multi_epochs
            )
    return policies
