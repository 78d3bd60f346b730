"""The `synpo` command: Hydra composes the config, the method runs its stages, a summary is printed.

synpo                                  # the CPU demo: two SynPO iterations on SmolLM2-135M
synpo experiment=cpu_demo method.iterations=1
synpo -m optimizer.beta=2,4            # a sweep; stages shared by the jobs run once
synpo --cfg job                        # show the composed config
synpo -m +recipe=demo_beta --cfg job   # show every job of a sweep
synpo --help                           # config groups and their options
"""

from __future__ import annotations

import logging
import os
import random
import sys
from importlib import resources
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from synpo import adapters, distributed
from synpo import config as schemas
from synpo.console import quiet_libraries
from synpo.errors import ConfigError, SynpoError
from synpo.io import read_jsonl, resolve_path

log = logging.getLogger("synpo")

# The config groups: conf/ of the repository, installed as the package data of `synpo.conf`.
CONF_DIR = Path(str(resources.files("synpo.conf")))
schemas.register_configs()


def validate(cfg: DictConfig) -> None:
    """Checks that need no model weights, cheapest first, before any expensive work: every value against its
    declared range (synpo/config.py), then the local data files, all before torch or transformers are imported
    (seconds); then the models, rewards and judges (which import them, and may convert the embedded model)."""
    schemas.check(cfg)
    _check_beta_override(cfg)
    adapters.check(cfg.peft)
    if cfg.mode == "eval":
        if not cfg.checkpoint:
            raise ConfigError("mode=eval needs checkpoint=<folder or hub id>")
        if not cfg.evaluation.suites:
            raise ConfigError("mode=eval needs evaluation=<mini|paper> (evaluation.suites is empty)")
    launch = _distributed(cfg)
    for key, node in _trainer_nodes(cfg):
        node = adapters.with_overrides(cfg.peft, node)  # the batch the trainer runs with
        try:
            distributed.check_batch(key, node["batch_size"], node["per_device_batch_size"], launch)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if node.get("max_prompt_length") is not None and not 0 < node["max_prompt_length"] < node["max_length"]:
            raise ConfigError(
                f"{key}.max_prompt_length={node['max_prompt_length']} must be at least 1 and below "
                f"{key}.max_length={node['max_length']}"
            )
    if cfg.mode == "train":
        check_data(cfg)
    if cfg.evaluation.suites:
        from synpo import evaluation

        evaluation.check_files(cfg.evaluation)

    quiet_libraries()  # imports transformers and datasets: after the checks that need neither
    from synpo.models import check_loadable, resolve_model
    from synpo.rewards import check_reward

    if cfg.mode == "eval":
        check_loadable(cfg.checkpoint, "checkpoint")
    m0 = resolve_model(cfg.model, cfg.paths.models)  # converts the embedded GGUF once
    check_loadable(m0, "model.path", cfg.model.trust_remote_code)
    check_reward(cfg.reward, m0)
    if cfg.evaluation.suites:
        evaluation.validate(cfg.checkpoint if cfg.mode == "eval" else m0, cfg.evaluation, m0)


def check_data(cfg: DictConfig) -> None:
    """Read the local data files the method will read (seed set, corpus, prompt pool, SPA's seed and prompts, the
    preference pairs) through the stages' own readers, so that a missing, malformed or empty file fails in seconds,
    named by its path and key. Hub data sets are checked when their stage loads them."""
    from synpo.stages import corpus, preference_data, prompt_pool, seed_set, spa_seed

    m, schema = cfg.method, OmegaConf.get_type(cfg.method)
    if issubclass(schema, schemas.PromptSourceConfig | schemas.SeedOnlyConfig):
        if cfg.data.source == "jsonl":
            seed_set.load(OmegaConf.to_object(cfg.data))
        elif cfg.data.gold_source == "file":
            read_jsonl(resolve_path(cfg.data.gold_file), ("prompt", "gold"), "data.gold_file")
    if issubclass(schema, schemas.PromptSourceConfig):
        used = m.mix if m.prompt_source == "mix" else [m.prompt_source]
        if "generator" in used and cfg.corpus.source == "jsonl":
            corpus.check(OmegaConf.to_object(cfg.corpus))
        if "ultrafeedback" in used and m.prompt_pool.source == "jsonl":
            prompt_pool.jsonl_prompts(m.prompt_pool.file, "method.prompt_pool.file", "method.prompt_pool.source")
    if issubclass(schema, schemas.SPAConfig) and m.data.source == "jsonl":
        spa_seed.load(OmegaConf.to_object(m.data))
        prompt_pool.jsonl_prompts(m.data.prompt_file, "method.data.prompt_file", "method.data.source")
    if issubclass(schema, schemas.OfflineSimPOConfig) and m.data.source == "jsonl":
        preference_data.jsonl_pairs(OmegaConf.to_object(m.data))


def _check_beta_override(cfg: DictConfig) -> None:
    """`optimizer.beta` given on the command line (each job of a flat `-m optimizer.beta=...` sweep gets it so) means
    nothing while `method.beta_grid` searches beta in every iteration: each job would run the whole grid."""
    grid = cfg.method.get("beta_grid")
    if not grid or not HydraConfig.initialized():
        return
    given = [o for o in HydraConfig.get().overrides.task if o.lstrip("+~").split("=")[0] == "optimizer.beta"]
    if given:
        raise ConfigError(
            f"{given[0]} is not used: method.beta_grid={list(grid)} searches beta in every iteration (a flat "
            "optimizer.beta sweep would run the whole grid in every job). Add method.beta_grid=[] to train one beta "
            "per job (the beta_grid and threshold_grid recipes do), or leave optimizer.beta out to keep the search."
        )


def _distributed(cfg: DictConfig):
    """The `distributed` group as the launcher of this process's training stages (checked)."""
    launch = distributed.configure(cfg.distributed)
    try:
        distributed.check(launch)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return launch


def _trainer_nodes(node: DictConfig, prefix: str = ""):
    """Every config node that sets a trainer's batch (optimizer, method.generator_sft, method.dpo, ...)."""
    if "batch_size" in node and "per_device_batch_size" in node:
        yield prefix.rstrip("."), node
    for key in node:
        if isinstance(node[key], DictConfig):
            yield from _trainer_nodes(node[key], f"{prefix}{key}.")


def summarise(records, policies: dict, run_dir: Path) -> dict:
    width = max(len(r.label) for r in records)
    lines = [f"{'stage':<{width}}  {'seconds':>8}  {'cache':<6} counts"]
    for r in records:
        counts = ", ".join(f"{k}={v}" for k, v in r.counts.items())
        counts = counts if len(counts) <= 160 else counts[:157] + "..."
        lines.append(f"{r.label:<{width}}  {r.seconds:>8.1f}  {'reused' if r.reused else 'new':<6} {counts}")
    computed = sum(r.seconds for r in records if not r.reused)
    lines.append(f"{'total computed':<{width}}  {computed:>8.1f}")
    print("\n" + "\n".join(lines))
    print("\nModels:")
    for name in policies:
        print(f"  {name}: {run_dir / 'models' / name}")
    return {
        "stages": [r.__dict__ for r in records],
        "models": {name: str(run_dir / "models" / name) for name in policies},
        "seconds_computed": round(computed, 1),
    }


def link_models(policies: dict, records, run_dir: Path) -> None:
    """models/M<t> -> the checkpoint's copy in the run directory (or M0's own path)."""
    from synpo.models import model_from_artifact

    label = {r.key: r.label for r in records}
    models = run_dir / "models"
    models.mkdir(exist_ok=True)
    for name, art in policies.items():
        copy = run_dir / "stages" / label[art.key]
        target = copy / "model" if (copy / "model").is_dir() else Path(model_from_artifact(art.path))
        link = models / name
        if link.is_symlink():
            link.unlink()
        link.symlink_to(os.path.relpath(target, models), target_is_directory=True)


def model_artifact(cfg: DictConfig, runner, label: str, path: str | None = None):
    """A model reference like M0's (a folder or a hub id); `path` overrides cfg.model.path (mode=eval)."""
    from synpo.stages import base_model

    model = OmegaConf.to_container(cfg.model, resolve=True)
    if path:
        model.update(source="hub", path=path, name=Path(path).name)
    return runner.run(label, base_model.run, config={"model": model, "models_dir": cfg.paths.models})


def evaluate(cfg: DictConfig, runner, policies: dict, tracker) -> dict:
    """Run the configured evaluation suites and the judge-free metric on every model (M0, M1, ... or the checkpoint);
    the local judge defaults to M0 in both modes, so a checkpoint is judged as it would be inside a run. Each model's
    results go to W&B against `iteration` (M<t> is iteration t)."""
    from synpo.stages import evaluate as evaluate_stage
    from synpo.tracking import model_iteration

    m0 = policies.get("M0") or model_artifact(cfg, runner, "m0")
    suites = OmegaConf.to_container(cfg.evaluation, resolve=True)
    suites.pop("gold_likelihood")  # its own stage: changing it re-runs no suite
    config = {
        "evaluation": suites,
        "generation": OmegaConf.to_container(cfg.generation, resolve=True),
        "dtype": cfg.model.dtype,
    }
    likelihood = gold_likelihood(cfg, runner)
    results, arts = {}, {}
    for position, (name, art) in enumerate(policies.items()):
        results[name] = {}
        if cfg.evaluation.suites:
            inputs = {"model": art, "m0": m0}
            arts[name] = runner.run(f"eval/{name}", evaluate_stage.run, config={**config, "name": name}, inputs=inputs)
            results[name] = dict(arts[name].counts)
        if likelihood:
            results[name]["gold_likelihood"] = likelihood(name, art)
        tracker.evaluation(name, model_iteration(name, position), results[name], sample_answers(arts, name, cfg))
    return results


def gold_likelihood(cfg: DictConfig, runner):
    """A function (model name, artifact) -> the judge-free metric with its paired difference to M0 (the first model),
    or None when it is off or no validation item is held out from the beta selection."""
    from synpo.io import read_jsonl
    from synpo.methods.recipe import plain
    from synpo.stage import Artifact
    from synpo.stages import gold_likelihood as stage
    from synpo.stages import seed_set

    node = cfg.evaluation.gold_likelihood
    if not node.max_items:
        return None
    seeds = next((Artifact(r.stage, r.key, Path(r.path)) for r in runner.records if r.label == "seed_set"), None)
    seeds = seeds or runner.run("seed_set", seed_set.run, config={"data": plain(cfg.data)})
    grid = cfg.method.get("beta_grid")
    skip = (cfg.method.selection_items or seeds.counts["validation"]) if grid else 0
    if seeds.counts["validation"] <= skip:
        log.warning(
            "no judge-free metric: the seed validation split has %d rows, all used by the beta selection "
            "(method.selection_items); give it more rows or lower selection_items",
            seeds.counts["validation"],
        )
        return None
    config = {"skip": skip, "items": node.max_items, "max_length": node.max_length}
    config.update(dtype=cfg.model.dtype, system_prompt=cfg.model.system_prompt)
    first: dict = {}

    def measure(name: str, art) -> dict:
        out = runner.run(f"likelihood/{name}", stage.run, config=config, inputs={"model": art, "seeds": seeds})
        items = {i["id"]: i["mean_logp"] for i in read_jsonl(out / "items.jsonl")}
        first.setdefault("items", items)
        diffs = [v - first["items"][k] for k, v in items.items()]
        return {**out.counts, "delta": round(sum(diffs) / len(diffs), 4), "delta_ci95": round(stage.interval(diffs), 4)}

    return measure


def sample_answers(arts: dict, name: str, cfg: DictConfig) -> list[list] | None:
    """AlpacaEval's first items: instruction, M0's answer, this model's answer and the judge's preference
    (1 = the suite's baseline answer wins, 2 = this model's)."""
    from synpo.io import read_jsonl

    if "alpaca_eval" not in cfg.evaluation.suites or name not in arts:
        return None
    suite = cfg.evaluation.alpaca_eval.name
    annotations = arts[name].path / name / suite / "annotations.jsonl"
    first = next(iter(arts))
    m0_outputs = arts[first].path / first / suite / "model_outputs.jsonl"
    if not annotations.is_file() or not m0_outputs.is_file():
        return None
    m0 = {r["index"]: r["output"] for r in read_jsonl(m0_outputs)}
    return [[a["instruction"], m0.get(a["index"], ""), a["output_2"], a["preference"]] for a in read_jsonl(annotations)]


def print_evaluation(results: dict, cfg: DictConfig) -> None:
    """The paper's columns for every evaluated model (the same as synpo-report's), then the judge-free ones; the
    judged columns of a local judge are marked, with whom the judge is."""
    from synpo.report import LC_GLM, MAIN_COLUMNS, evaluation_columns, offline_lc_notes

    table = {name: evaluation_columns(r) for name, r in results.items()}
    columns = [
        c for c in next(iter(table.values()), {}) if c != LC_GLM and any(row[c] is not None for row in table.values())
    ]
    if not columns:
        return
    judge = cfg.evaluation.judge
    local = judge.backend == "local"
    names = {c: f"{c}*" if local and c in MAIN_COLUMNS else c for c in columns}
    print("\nEvaluation (the shipped mini suites are not the real benchmarks; unparsable verdicts are not scored):")
    print("model  " + "  ".join(names[c] for c in columns))
    for name, row in table.items():
        cells = [f"{row[c]:.3g}" if isinstance(row[c], int | float) else "-" for c in columns]
        print(f"{name:<5}  " + "  ".join(f"{v:>{len(names[c])}}" for v, c in zip(cells, columns, strict=True)))
    for note in offline_lc_notes(list(table.values())):
        print(note)
    if local and any(c in MAIN_COLUMNS for c in columns):
        who = f"the local model {judge.model}" if judge.model else f"M0 itself ({cfg.model.name})"
        print(
            f"* judged by {who}: a small local judge barely tells answers apart, so these columns can stay put while "
            "the model changes; read the judge-free columns."
        )
    if "gold LL" in columns:
        print(
            "gold LL: mean per-token log-likelihood of held-out seed gold answers (± its 95% interval; Δ vs M0 paired "
            "on the same items); answer tokens / cut: AlpacaEval answers' mean length and share cut at the token limit."
        )


def run(cfg: DictConfig) -> dict:
    validate(cfg)  # before the heavy imports below, so that a bad value or file is reported in seconds
    import torch

    from synpo import token_audit
    from synpo.io import write_json
    from synpo.methods import METHODS
    from synpo.models import resolve_model
    from synpo.stage import Runner
    from synpo.tracking import Tracker

    if cfg.distributed.num_machines > 1 and int(os.environ.get("SLURM_PROCID") or 0) > 0:
        # A multi-machine Slurm job runs this on every machine: rank 0 runs the stages and starts each training
        # stage on all machines through `distributed.launch_prefix` (srun).
        log.info("machine rank %s: the job runs on rank 0", os.environ["SLURM_PROCID"])
        return {}
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    m0 = resolve_model(cfg.model, cfg.paths.models)
    token_audit.run(cfg, cfg.checkpoint if cfg.mode == "eval" else m0, m0, run_dir)
    multirun = hc.mode.name == "MULTIRUN"
    # A sweep's jobs share a W&B group named after the sweep folder.
    group = Path(hc.sweep.dir).name if multirun else None
    tracker = Tracker(cfg, run_dir, f"{Path(hc.sweep.dir).name}-{hc.job.num}" if multirun else run_dir.name, group)
    runner = Runner(Path(cfg.paths.cache), run_dir, cfg.cache_verify, on_record=tracker.stage)
    log.info("run directory: %s; stage cache: %s", run_dir, cfg.paths.cache)
    if cfg.mode == "eval":
        policies = {"checkpoint": model_artifact(cfg, runner, "checkpoint", cfg.checkpoint)}
    else:
        policies = METHODS[cfg.method.name](cfg, runner)
    judged = cfg.evaluation.suites or cfg.evaluation.gold_likelihood.max_items
    results = evaluate(cfg, runner, policies, tracker) if judged else {}
    link_models(policies, runner.records, run_dir)
    summary = summarise(runner.records, policies, run_dir)
    summary["evaluation"] = results
    print_evaluation(results, cfg)
    write_json(run_dir / "summary.json", summary)
    tracker.finish({"seconds_computed": summary["seconds_computed"]})
    return summary


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except SynpoError as e:
        log.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def show_sweep(args: list[str]) -> int:
    """`synpo -m OVERRIDES --cfg job|hydra|all`: Hydra refuses --cfg beside --multirun, so print each job's composed
    config instead: the recipe's `hydra.sweeper.params` and the command line's sweeps, expanded as Hydra's basic
    sweeper expands them (the command line wins over a recipe for the same key)."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    flag = next(i for i, a in enumerate(args) if a in ("--cfg", "-c"))
    what = args[flag + 1] if flag + 1 < len(args) else "job"
    overrides = [a for i, a in enumerate(args) if not a.startswith("-") and i != flag + 1]
    parser = OverridesParser.create()
    fixed = [o.input_line for o in parser.parse_overrides(overrides) if not o.is_sweep_override()]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="synpo"):
        sweeper = compose("config", overrides=fixed, return_hydra_config=True).hydra.sweeper
        if sweeper._target_ != "hydra._internal.core_plugins.basic_sweeper.BasicSweeper":
            print(f"error: --cfg with -m lists the basic sweeper's jobs, not {sweeper._target_}'s", file=sys.stderr)
            return 2
        params = [f"{k}={v}" for k, v in (sweeper.params or {}).items()]
        (jobs,) = BasicSweeper.split_arguments(parser.parse_overrides(params + overrides), None)
        for num, job in enumerate(jobs):
            cfg = compose("config", overrides=job, return_hydra_config=what != "job")
            print(f"# job {num}: {' '.join(job)}\n{OmegaConf.to_yaml(cfg.hydra if what == 'hydra' else cfg)}")
    return 0


def main() -> None:
    """`synpo cache ...` manages the stage cache; `synpo -m ... --cfg job` shows a sweep's jobs; anything else is a
    Hydra run."""
    args = sys.argv[1:]
    if args[:1] == ["cache"]:
        from synpo.cache import main as cache_main

        sys.exit(cache_main(args[1:]))
    if {"-m", "--multirun"} & set(args) and {"--cfg", "-c"} & set(args):
        sys.exit(show_sweep(args))
    hydra_main()


if __name__ == "__main__":
    main()
