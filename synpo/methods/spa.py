"""SPA, Spread Preference Annotation (Kim et al., arXiv 2406.04412), as a sequence of cached stages.

From an SFT model M0 and a small labelled seed:
0. pi0 = DPO from M0 on the seed pairs (`seed_pairs`, `seed_dpo`);
then each iteration i = 1..n, from pi(i-1):
1. the next slice of unlabelled prompts (`iterN/prompts`), answered twice by pi(i-1) (`iterN/answers`);
2. direct preference judgment: the answer with the higher implicit reward log pi(i-1)(y|x) - log pi_ref(y|x) is
   chosen (`iterN/label_gaps` through the shared `reward_gap` stage and `reward=implicit`, then `iterN/pairs`);
   pi_ref is M0 (`method.label_reference=sft`, the paper's choice) or the model pi(i-1) was trained from
   (`previous`; the same as M0 in iteration 1);
3. pi(i) = DPO from pi(i-1), also the reference, with self-refinement of the least confident labels and de-coupled
   noise detection (`iterN/policy`, `synpo/noise_aware_dpo.py`).
All prompt slices are cut before any training, so a pool too small for an iteration fails at start-up.
SPA reads its data from `method.data` and trains with `method.seed_dpo` / `method.dpo`: the `data`, `corpus` and
`optimizer` groups are SynPO's and unused here.
"""

from __future__ import annotations

from omegaconf import DictConfig

from synpo.errors import ModelError
from synpo.methods.recipe import Recipe, m0_of, plain
from synpo.models import check_loadable, load_tokenizer, model_from_artifact
from synpo.stage import Artifact, Runner
from synpo.stages import reward_gap, spa_answers, spa_dpo, spa_label, spa_prompts, spa_seed


def check_reference_tokenizer(reference: str, m0_path: str) -> None:
    """The implicit reward compares two models' log-probabilities of the same token ids."""
    check_loadable(reference, "reward.reference")
    if load_tokenizer(reference).get_vocab() != load_tokenizer(m0_path).get_vocab():
        raise ModelError(
            f"reward.reference={reference!r}: its tokenizer differs from the policy's (M0, {m0_path}); the implicit "
            "reward needs a reference with the same tokenizer"
        )


def run(cfg: DictConfig, runner: Runner) -> dict[str, Artifact]:
    """Run SPA; returns {"M0": ..., "seed_dpo": pi0, "M1": pi1, ...}."""
    r, m, seed = Recipe(cfg), cfg.method, cfg.seed
    m0 = m0_of(cfg, runner)
    if cfg.reward.name == "implicit" and cfg.reward.reference:
        check_reference_tokenizer(cfg.reward.reference, model_from_artifact(m0.path))
    seeds = runner.run("seed_pairs", spa_seed.run, config={"data": plain(m.data)})
    prompts, offset = {}, 0
    for i in range(1, m.iterations + 1):
        n = m.prompts_per_iteration[i - 1]
        prompts[i] = runner.run(
            f"iter{i}/prompts",
            spa_prompts.run,
            config={"data": plain(m.data), "iteration": i, "offset": offset, "n": n},
            inputs={"seed": seeds},
        )
        offset += n

    def train(label: str, start: Artifact, pairs: Artifact, pairs_file: str, optimizer, refinement=None, lam=None):
        config = {
            **r.training("optimizer", optimizer),
            "refinement": refinement,
            "extrapolation": lam,
            "pairs_file": pairs_file,
            "max_prompt_length": m.max_prompt_length,
            "seed": seed,
            **r.common,
        }
        return runner.run(label, spa_dpo.run, config=config, inputs={"model": start, "pairs": pairs})

    # The seed's labels are human ones: plain DPO. Self-refinement needs only these keys (`lambdas` go one by one).
    policy = train("seed_dpo", m0, seeds, "seed.jsonl", m.seed_dpo)
    refinement = {k: v for k, v in plain(m.refinement).items() if k not in ("decoupled", "lambdas")}
    policies, before = {"M0": m0, "seed_dpo": policy}, m0
    g = cfg.generation
    sampling = {"max_new_tokens": m.max_new_tokens, "temperature": g.temperature, "top_p": g.top_p}
    for i in range(1, m.iterations + 1):
        it = f"iter{i}"
        answers = runner.run(
            f"{it}/answers",
            spa_answers.run,
            config={
                "generation": plain(cfg.generation),
                "sampling": {**sampling, "seed": seed + i},
                "max_prompt_length": m.max_prompt_length,
                **r.common,
            },
            inputs={"model": policy, "prompts": prompts[i]},
        )
        reward = r.reward
        if cfg.reward.name == "implicit":
            reference = cfg.reward.reference
            if not reference and m.label_reference == "previous":
                reference = model_from_artifact(before.path)
            reward = {**reward, "model": model_from_artifact(policy.path), "reference": reference}
        gaps = runner.run(
            f"{it}/label_gaps",
            reward_gap.run,
            config={
                "chosen": ["answers.jsonl", "answer_a"],
                "rejected": ["answers.jsonl", "answer_b"],
                "reward": reward,
                **r.common,
            },
            inputs={"chosen": answers, "rejected": answers, "m0": m0},
        )
        pairs = runner.run(f"{it}/pairs", spa_label.run, inputs={"answers": answers, "gaps": gaps})
        lam = m.refinement.lambdas[i - 1] if m.refinement.decoupled else None
        before, policy = policy, train(f"{it}/policy", policy, pairs, "pairs.jsonl", m.dpo, refinement, lam)
        policies[f"M{i}"] = policy
    return policies
