"""Table 2's Sampling-Ranking baseline: pairs ranked among the model's own samples by the scorer SynPO filters with.

Each iteration t = 1..T:
1. the prompts (`method.prompt_source`: `generator`, SynPO's generator-written prompts, the same ones SynPO trains
   on, so that only the way pairs are made differs; or Table 6's other sources, `synpo/methods/prompt_sources.py`);
2. M(t-1) answers each prompt `method.samples_per_prompt` times (5 in the paper; `iterN/samples`);
3. the configured reward (PairRM for Mistral, ArmoRM for Llama3, `self_judge` in the demo) scores the samples
   (`iterN/sample_scores`); the best is chosen and the worst rejected; prompts whose best and worst tie give no pair;
   `method.pairs_per_iteration` pairs are added to the accumulated set D (`iterN/pairs`);
4. M(t) = SimPO from M0 on D, as in SynPO (`iterN/policy`).
The reward threshold does not apply: the paper describes no filter beyond best vs worst.

    synpo experiment=cpu_sampling_ranking logger=none
    synpo experiment=paper_sampling_ranking_mistral
"""

from __future__ import annotations

from omegaconf import DictConfig

from synpo.methods.baselines import require_pairs, sample, train_simpo
from synpo.methods.prompt_sources import prompt_source
from synpo.methods.recipe import Recipe, seeds_and_m0
from synpo.stage import Artifact, Runner
from synpo.stages import best_worst_pairs, score_samples


def run(cfg: DictConfig, runner: Runner) -> dict[str, Artifact]:
    """Returns {"M0": ..., "M1": ..., ...}."""
    r, m, seed = Recipe(cfg), cfg.method, cfg.seed
    seeds, m0 = seeds_and_m0(cfg, runner)
    prompts_of = prompt_source(cfg, runner, seeds, m0)
    policies, policy, preference_set = {"M0": m0}, m0, None
    for t in range(1, m.iterations + 1):
        it = f"iter{t}"
        samples = sample(cfg, runner, f"{it}/samples", policy, prompts_of(t), seed + t)
        scores = runner.run(
            f"{it}/sample_scores",
            score_samples.run,
            config={"reward": r.reward, **r.common},
            inputs={"samples": samples, "m0": m0},
        )
        previous = {"previous": preference_set} if preference_set is not None else {}
        preference_set = runner.run(
            f"{it}/pairs",
            best_worst_pairs.run,
            config={"iteration": t, "per_iteration": m.pairs_per_iteration, "seed": seed + t},
            inputs={"samples": samples, "scores": scores, **previous},
        )
        policy = train_simpo(cfg, runner, f"{it}/policy", m0, require_pairs(preference_set, f"{it}/pairs"))
        policies[f"M{t}"] = policy
    return policies
