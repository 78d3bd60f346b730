"""Where each iteration's prompts come from (`method.prompt_source`), for SynPO and the sampling baselines alike, so
Table 6's ablation (SynPO's and Sampling-Ranking's pairs on UltraFeedback, Self-Instruct, generator and mixed prompts)
is one override: `synpo method.prompt_source=self_instruct` (README, "Baselines and ablations")."""

from __future__ import annotations

from collections.abc import Callable

from omegaconf import DictConfig

from synpo.methods.recipe import Recipe, plain
from synpo.stage import Artifact, Runner
from synpo.stages import corpus, keyword_lists, mix_prompts, prompt_generator, prompt_pool, self_instruct, write_prompts

# Iteration t's prompts as the `answer` stage takes them: (artifact, file, how many of its rows; None = all).
Prompts = tuple[Artifact, str, int | None]


def self_prompts(cfg: DictConfig, runner: Runner, seeds: Artifact, m0: Artifact) -> Callable[[int], Artifact]:
    """SynPO's prompt source (Sec. 2.1): G is trained once from M0 on the seed set (stage `generator`); then
    `prompts(t)` draws iteration t's keyword lists from the corpus and G writes one question per list
    (`iterN/keywords`, `iterN/prompts`)."""
    r, m, seed = Recipe(cfg), cfg.method, cfg.seed
    paragraphs = runner.run("corpus", corpus.run, config={"corpus": plain(cfg.corpus)})
    generator = runner.run(
        "generator",
        prompt_generator.run,
        config={
            **r.training("sft", m.generator_sft),
            "keywords": plain(m.keywords),
            "items": m.generator_seed_items,
            "seed": seed,
            **r.common,
        },
        inputs={"seed": seeds, "m0": m0},
    )

    def prompts(t: int) -> Artifact:
        keywords = runner.run(
            f"iter{t}/keywords",
            keyword_lists.run,
            config={"keywords": plain(m.keywords), "n": m.prompts_per_iteration, "seed": seed + t},
            inputs={"corpus": paragraphs},
        )
        return runner.run(
            f"iter{t}/prompts",
            write_prompts.run,
            config={"prompt_filter": plain(m.prompt_filter), **r.generating("question", seed + t)},
            inputs={"generator": generator, "keywords": keywords},
        )

    return prompts


def prompt_source(cfg: DictConfig, runner: Runner, seeds: Artifact, m0: Artifact) -> Callable[[int], Prompts]:
    """`prompts(t)`: iteration t's prompts from `method.prompt_source` (checked by `PromptSourceConfig.check`)."""
    r, m, seed = Recipe(cfg), cfg.method, cfg.seed
    n = m.prompts_per_iteration

    def source(name: str) -> Callable[[int], Prompts]:
        if name == "generator":
            written = self_prompts(cfg, runner, seeds, m0)
            return lambda t: (written(t), "prompts.jsonl", None)
        if name == "seed":
            return lambda t: (seeds, "train.jsonl", n)
        if name == "ultrafeedback":
            return staged(
                "ultrafeedback_prompts",
                prompt_pool.run,
                lambda t: {"pool": plain(m.prompt_pool), "n": n, "iteration": t},
                {"seed": seeds},
            )
        return staged(
            "self_instruct_prompts",
            self_instruct.run,
            lambda t: {
                "n": n,
                "prompt_filter": plain(m.prompt_filter),
                **plain(m.self_instruct),
                "iteration": t,
                **r.generating("question", seed + t),
            },
            {"model": m0, "seed": seeds},
        )

    def staged(label: str, fn, config: Callable[[int], dict], inputs: dict) -> Callable[[int], Prompts]:
        """A stage that writes iteration t's `prompts.jsonl` (`iterN/<label>`), configured by `config(t)`."""
        return lambda t: (runner.run(f"iter{t}/{label}", fn, config=config(t), inputs=inputs), "prompts.jsonl", None)

    if m.prompt_source != "mix":
        return source(m.prompt_source)
    parts = {name: source(name) for name in m.mix}

    def mixed(t: int) -> Prompts:
        picked = {name: part(t) for name, part in parts.items()}
        artifact = runner.run(
            f"iter{t}/mixed_prompts",
            mix_prompts.run,
            config={
                "parts": {name: [file, limit] for name, (_, file, limit) in picked.items()},
                "n": n,
                "seed": seed + t,
            },
            inputs={name: art for name, (art, _, _) in picked.items()},
        )
        return artifact, "prompts.jsonl", None

    return mixed
