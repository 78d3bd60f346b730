"""The `synpo` command: Hydra composes the config, the method runs its stages, a summary is printed.

synpo                                  # the CPU demo: two SynPO iterations on SmolLM2-135M
synpo experiment=cpu_demo method.iterations=1
synpo -m optimizer.beta=2,4            # a sweep; stages shared by the jobs run once
synpo --cfg job                        # show the composed config
synpo --help                           # config groups and their options
"""

from __future__ import annotations

import logging
import os
import random
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from synpo import distributed
from synpo.config import AUDIT_MODES, register_configs
from synpo.errors import ConfigError, SynpoError

log = logging.getLogger("synpo")

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
register_configs()


def validate(cfg: DictConfig) -> None:
    """Checks that need no model weights, run before any expensive work."""
    from synpo.generation import BACKENDS
    from synpo.methods import METHODS
    from synpo.models import check_loadable, resolve_model, torch_dtype
    from synpo.rewards import REWARDS, check_reward

    choices = {
        "method.name": (cfg.method.name, METHODS),
        "reward.name": (cfg.reward.name, REWARDS),
        "generation.backend": (cfg.generation.backend, BACKENDS),
        "cache_verify": (cfg.cache_verify, ("size", "sha256")),
        "audit.tokens": (cfg.audit.tokens, AUDIT_MODES),
    }
    for key, (value, valid) in choices.items():
        if value not in valid:
            raise ConfigError(f"{key}={value!r} is not available; choose one of {sorted(valid)}")
    torch_dtype(cfg.model.dtype)
    if cfg.mode not in ("train", "eval"):
        raise ConfigError(f"mode={cfg.mode!r}: expected train or eval")
    if cfg.mode == "eval":
        if not cfg.checkpoint:
            raise ConfigError("mode=eval needs checkpoint=<folder or hub id>")
        if not cfg.evaluation.suites:
            raise ConfigError("mode=eval needs evaluation=<mini|paper> (evaluation.suites is empty)")
        check_loadable(cfg.checkpoint, "checkpoint")
    launch = _distributed(cfg)
    for key, node in _trainer_nodes(cfg):
        try:
            distributed.check_batch(key, node.batch_size, node.per_device_batch_size, launch)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    m0 = resolve_model(cfg.model, cfg.paths.models)  # converts the embedded GGUF once
    check_loadable(m0, "model.path", cfg.model.trust_remote_code)
    check_reward(cfg.reward, m0)
    if cfg.evaluation.suites:
        import evaluation

        evaluation.validate(cfg.checkpoint if cfg.mode == "eval" else m0, cfg.evaluation, m0)


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


def evaluate(cfg: DictConfig, runner, policies: dict) -> dict:
    """Run the configured evaluation suites on every model (M0, M1, ... or the checkpoint); the local judge
    defaults to M0 in both modes, so a checkpoint is judged as it would be inside a run."""
    from synpo.stages import evaluate as evaluate_stage

    m0 = policies.get("M0") or model_artifact(cfg, runner, "m0")
    config = {
        "evaluation": OmegaConf.to_container(cfg.evaluation, resolve=True),
        "generation": OmegaConf.to_container(cfg.generation, resolve=True),
        "dtype": cfg.model.dtype,
    }
    results = {}
    for name, art in policies.items():
        inputs = {"model": art, "m0": m0}
        results[name] = runner.run(
            f"eval/{name}", evaluate_stage.run, config={**config, "name": name}, inputs=inputs
        ).counts
    return results


def print_evaluation(results: dict) -> None:
    """The paper's columns for every evaluated model (the same as synpo-report's)."""
    from synpo.report import evaluation_columns

    table = {name: evaluation_columns(r) for name, r in results.items()}
    columns = [c for c in next(iter(table.values()), {}) if any(row[c] is not None for row in table.values())]
    if not columns:
        return
    print("\nEvaluation (the shipped mini suites are not the real benchmarks; unparsable verdicts are not scored):")
    print("model  " + "  ".join(columns))
    for name, row in table.items():
        cells = [f"{row[c]:.3g}" if isinstance(row[c], int | float) else "-" for c in columns]
        print(f"{name:<5}  " + "  ".join(f"{v:>{len(c)}}" for v, c in zip(cells, columns, strict=True)))


def run(cfg: DictConfig) -> dict:
    import torch

    from synpo import token_audit
    from synpo.io import write_json
    from synpo.methods import METHODS
    from synpo.models import resolve_model
    from synpo.stage import Runner
    from synpo.tracking import Tracker

    validate(cfg)
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
    results = evaluate(cfg, runner, policies) if cfg.evaluation.suites else {}
    link_models(policies, runner.records, run_dir)
    summary = summarise(runner.records, policies, run_dir)
    summary["evaluation"] = results
    print_evaluation(results)
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


def main() -> None:
    """`synpo cache ...` manages the stage cache; anything else is a Hydra run."""
    if sys.argv[1:2] == ["cache"]:
        from synpo.cache import main as cache_main

        sys.exit(cache_main(sys.argv[2:]))
    hydra_main()


if __name__ == "__main__":
    main()
