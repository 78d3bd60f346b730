"""SynPO, Algorithm 1 of Dong et al. (ICLR 2025), as a sequence of cached stages.

Each stage declares exactly the part of the config it depends on, so a beta sweep shares everything
before SimPO in iteration 1, and a threshold sweep shares everything before the filters. Choices the
paper leaves open, and how they are made here:
- keywords: random words of one paragraph; lists with stopwords or capitalised mid-sentence words
  (possible names) are dropped (`synpo/keywords.py`);
- repetition: fraction of repeated word n-grams (`synpo/filters.py`), threshold `method.max_repetition`;
- iteration 1: M(t-1) = M0, so y_(t-1) and y_0 are the same samples (same stage, same key);
- the scorer of the demo: `reward=self_judge`, M0's own yes/no verdict (`synpo/rewards.py`).
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from synpo.methods.prompt_sources import prompt_source
from synpo.methods.recipe import Recipe, plain, seeds_and_m0
from synpo.stage import Artifact, Runner
from synpo.stages import (
    answer,
    audit,
    build_pairs,
    response_improver,
    reward_gap,
    rewrite,
    select_policy,
    simpo,
)

log = logging.getLogger(__name__)


def run(cfg: DictConfig, runner: Runner) -> dict[str, Artifact]:
    """Run SynPO; returns the policy of every iteration, {"M0": ..., "M1": ..., ...}."""
    r, m, seed = Recipe(cfg), cfg.method, cfg.seed
    seeds, m0 = seeds_and_m0(cfg, runner)

    def gaps(label: str, chosen: tuple[Artifact, str, str], rejected: tuple[Artifact, str, str]) -> Artifact:
        config = {"chosen": chosen[1:], "rejected": rejected[1:], "reward": r.reward, **r.common}
        inputs = {"chosen": chosen[0], "rejected": rejected[0], "m0": m0}
        return runner.run(label, reward_gap.run, config=config, inputs=inputs)

    def answers(label: str, model: Artifact, prompts: Artifact, file: str, limit: int | None = None) -> Artifact:
        config = {"prompts_file": file, "limit": limit, **r.generating("answer", seed)}
        return runner.run(label, answer.run, config=config, inputs={"model": model, "prompts": prompts})

    def train_policy(label: str, preferences: Artifact, beta: float) -> Artifact:
        config = {**r.training("optimizer", {**plain(cfg.optimizer), "beta": beta}), "seed": seed, **r.common}
        return runner.run(label, simpo.run, config=config, inputs={"m0": m0, "preferences": preferences})

    def best_of_grid(it: str, preferences: Artifact) -> Artifact:
        """One SimPO model per beta; the one that beats the gold validation answers most often wins."""
        models, scored = {}, {}
        for beta in m.beta_grid:
            tag = f"beta{beta:g}"
            models[beta] = train_policy(f"{it}/policy_{tag}", preferences, beta)
            val = answers(f"{it}/validation_{tag}", models[beta], seeds, "validation.jsonl", m.selection_items)
            scored[tag] = gaps(
                f"{it}/validation_gaps_{tag}", (val, "answers.jsonl", "answer"), (seeds, "validation.jsonl", "gold")
            )
        selection = runner.run(
            f"{it}/select_beta", select_policy.run, config={"betas": list(m.beta_grid)}, inputs=scored
        )
        return models[selection.counts["best_beta"]]

    # Once: the self-prompt generator G (for `method.prompt_source=generator`, the paper's; Table 6 varies it).
    prompts_of = prompt_source(cfg, runner, seeds, m0)

    policies, preference_set = {"M0": m0}, None
    policy = m0
    for t in range(1, m.iterations + 1):
        it = f"iter{t}"
        # 1. G writes new prompts from keyword lists of the corpus (or `method.prompt_source`'s prompts: Table 6).
        prompts, prompts_file, limit = prompts_of(t)
        # 2. R_t learns, from M0, to rewrite M(t-1)'s seed answers into the gold ones.
        seed_answers = answers(f"{it}/seed_answers", policy, seeds, "train.jsonl", m.improver_seed_items)
        improver = runner.run(
            f"{it}/improver",
            response_improver.run,
            config={**r.training("sft", m.improver_sft), "threshold": cfg.reward.threshold, "seed": seed, **r.common},
            inputs={
                "seed": seeds,
                "answers": seed_answers,
                "gaps": gaps(
                    f"{it}/seed_gaps", (seeds, "train.jsonl", "gold"), (seed_answers, "answers.jsonl", "answer")
                ),
                "m0": m0,
            },
        )
        # 3. chosen = R_t(y_(t-1)), rejected = y_0.
        y_prev = answers(f"{it}/policy_answers", policy, prompts, prompts_file, limit)
        y0 = answers(f"{it}/m0_answers", m0, prompts, prompts_file, limit)
        chosen = runner.run(
            f"{it}/rewrites",
            rewrite.run,
            config=r.generating("rewrite", seed + t),
            inputs={"improver": improver, "answers": y_prev},
        )
        # 4. Filter by reward gap and repetition; add to the accumulated preference set D.
        pairs_inputs = {
            "rewrites": chosen,
            "rejected": y0,
            "gaps": gaps(f"{it}/pair_gaps", (chosen, "rewrites.jsonl", "rewrite"), (y0, "answers.jsonl", "answer")),
        }
        if preference_set is not None:
            pairs_inputs["previous"] = preference_set
        preference_set = runner.run(
            f"{it}/pairs",
            build_pairs.run,
            config={
                "iteration": t,
                "threshold": cfg.reward.threshold,
                "max_repetition": m.max_repetition,
                "ngram": m.repetition_ngram,
                "per_iteration": m.pairs_per_iteration,
                "seed": seed + t,
            },
            inputs=pairs_inputs,
        )
        checked = runner.run(
            f"{it}/audit",
            audit.run,
            config={
                "max_new_tokens": {k: m.max_new_tokens[k] for k in ("answer", "rewrite")},
                "threshold": cfg.reward.threshold,
                "ngram": m.repetition_ngram,
                "bins": cfg.audit.gap_bins,
            },
            inputs={"pairs": preference_set, "rewrites": chosen, "rejected": y0, "m0": m0},
        )
        for warning in audit.warnings(checked.counts, t, cfg.audit.max_length_ratio, cfg.audit.max_truncated):
            log.warning("%s", warning)
        # 5. M(t) = SimPO from M0 on D (with the best beta of the grid when one is given).
        if m.beta_grid:
            policy = best_of_grid(it, preference_set)
        else:
            policy = train_policy(f"{it}/policy", preference_set, cfg.optimizer.beta)
        policies[f"M{t}"] = policy
    return policies
