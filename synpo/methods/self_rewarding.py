"""Table 2's Self-Rewarding baseline (Yuan et al., 2024), trained with SimPO like every row of the table.

0. SFT from M0 on the seed set as instruction data plus LLM-as-judge data built from it (`seed_sft`; see
   `synpo/stages/seed_sft.py` for how the judge examples are made): the model "ift_eft", Yuan et al.'s M1;
then each iteration t = 1..T, from the previous model M(t-1) (the SFT model when t = 1):
1. the prompts (`method.prompt_source`: SynPO's generator-written prompts by default, the same ones SynPO and
   Sampling-Ranking train on; Yuan et al. let the model write its own, which is SynPO's idea in another form);
2. M(t-1) answers each prompt `method.samples_per_prompt` times (4 in Yuan et al.; `iterN/samples`);
3. M(t-1) judges each answer with the additive 5-point prompt, `method.judging.judgments` times, and the mean of the
   parsable "Score: N" verdicts is the answer's score; unparsable verdicts are counted and never scored
   (`iterN/judgments`). With `method.judging.verdict=logprobs` (the demo's: a 135M model, even after the judge
   examples, does not write the format) the score is read from the model's probabilities of 0..5 after "Score:";
4. best vs worst score is the pair (ties and prompts with fewer than two scored answers give none; `iterN/pairs`);
5. M(t) = SimPO (`iterN/policy`), on `method.training_data`:
   - `accumulated` (the paper preset's: the paper gives the iterative baselines "the same training data size" as
     SynPO): from the SFT model on the pairs of iterations 1..t, as SynPO trains M(t) from M0 on its accumulated D.
     The start is the SFT model, not M0 itself, so that every model keeps the judge training its successor's
     judgments rely on;
   - `new` (Yuan et al.'s): from M(t-1) on the pairs of iteration t only.
The `reward` group is not used: the model is its own judge.

    synpo experiment=cpu_self_rewarding logger=none
    synpo experiment=paper_self_rewarding_mistral
"""

from __future__ import annotations

from omegaconf import DictConfig

from synpo.methods.baselines import require_pairs, sample, train_simpo
from synpo.methods.prompt_sources import prompt_source
from synpo.methods.recipe import Recipe, plain, seeds_and_m0
from synpo.stage import Artifact, Runner
from synpo.stages import best_worst_pairs, judge_samples, seed_sft


def run(cfg: DictConfig, runner: Runner) -> dict[str, Artifact]:
    """Returns {"M0": ..., "ift_eft": the SFT model, "M1": ..., ...}."""
    r, m, seed = Recipe(cfg), cfg.method, cfg.seed
    seeds, m0 = seeds_and_m0(cfg, runner)
    prompts_of = prompt_source(cfg, runner, seeds, m0)
    sft_model = runner.run(
        "seed_sft",
        seed_sft.run,
        config={
            **r.training("sft", m.seed_sft),
            "items": m.sft_items,
            "eft_items": m.eft_items,
            "seed": seed,
            **r.common,
        },
        inputs={"seed": seeds, "model": m0},
    )
    accumulated = m.training_data == "accumulated"
    policies, policy, preference_set = {"M0": m0, "ift_eft": sft_model}, sft_model, None
    for t in range(1, m.iterations + 1):
        it = f"iter{t}"
        samples = sample(cfg, runner, f"{it}/samples", policy, prompts_of(t), seed + t)
        judgments = runner.run(
            f"{it}/judgments",
            judge_samples.run,
            config={"judging": plain(m.judging), "generation": plain(cfg.generation), "seed": seed + t, **r.common},
            inputs={"judge": policy, "samples": samples},
        )
        previous = {"previous": preference_set} if accumulated and preference_set is not None else {}
        preference_set = runner.run(
            f"{it}/pairs",
            best_worst_pairs.run,
            config={"iteration": t, "per_iteration": m.pairs_per_iteration, "seed": seed + t},
            inputs={"samples": samples, "scores": judgments, **previous},
        )
        start = sft_model if accumulated else policy
        policy = train_simpo(cfg, runner, f"{it}/policy", start, require_pairs(preference_set, f"{it}/pairs"))
        policies[f"M{t}"] = policy
    return policies
