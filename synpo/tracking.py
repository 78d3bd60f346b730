"""Weights & Biases: one run per Hydra job, offline by default. API keys come from the environment only.

What a run holds, laid out for comparing the jobs of a sweep:
- config: the resolved Hydra config, nothing else (so `optimizer.beta`, `reward.threshold`, ... are the keys the user
  swept); a sweep's jobs share a group;
- against the step metric `iteration` (M0 = 0): every evaluated model's suite metrics (`eval/...`) and each
  iteration's data (`data/...`: prompts, pairs, the data audit, trainers' final loss and reward accuracy, the chosen
  beta of a beta grid), the sample pairs (`samples/iter<t>/...`) and sample evaluation answers (`samples/eval/...`);
- each trainer's curves under `train/<stage label>/` against its own step (`synpo.training.Curves`);
- one table of every stage's counts and timings (`stages`), and the last model's metrics as the run summary.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from synpo.stage import StageRecord

log = logging.getLogger(__name__)

SAMPLE_ROWS = 20
STEP = "iteration"
# Per-iteration data, by stage: {metric name under data/: count key}. `{name}` is the stage label's last part
# (`policy`, `policy_beta6`), so each candidate of a beta grid has its own curve.
DATA = {
    "write_prompts": {"prompts/written": "generated", "prompts/kept": "kept"},
    "prompt_pool": {"prompts/kept": "prompts"},
    "build_pairs": {
        "pairs/scored": "candidates",
        "pairs/kept": "kept",
        "pairs/added": "added",
        "pairs/preference_set": "preference_set",
        "pairs/mean_gap_kept": "mean_gap_kept",
    },
    "response_improver": {"improver/examples": "examples", "improver/final_loss": "final_loss"},
    "simpo": {"{name}/final_loss": "final_loss", "{name}/reward_accuracy": "reward_accuracy"}
    | {"{name}/reward_margin": "reward_margin"},
    "select_policy": {"chosen_beta": "best_beta"},
}
DATA["best_worst_pairs"] = DATA["build_pairs"]
DATA["spa_dpo"] = DATA["simpo"]


def iteration_of(label: str) -> int | None:
    match = re.match(r"iter(\d+)/", label)
    return int(match.group(1)) if match else None


def model_iteration(name: str, position: int) -> int:
    """M<t> is iteration t; other model names (the seed-only variants, a checkpoint) count in their order."""
    match = re.fullmatch(r"M(\d+)", name)
    return int(match.group(1)) if match else position


def numbers(tree: dict, prefix: str) -> dict:
    """The numeric leaves of nested results as {prefix/key/...: value}."""
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(numbers(v, f"{prefix}/{k}"))
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out[f"{prefix}/{k}"] = v
    return out


class Tracker:
    def __init__(self, cfg: DictConfig, run_dir: Path, job_name: str, group: str | None):
        self.run, self.stages, self.last_eval = None, [], {}
        if cfg.logger.name == "none":
            return
        import wandb

        os.environ.setdefault("WANDB_SILENT", "true")
        self.run = wandb.init(
            project=cfg.logger.project,
            entity=cfg.logger.entity,
            mode=cfg.logger.mode,
            group=cfg.logger.group or group,
            tags=list(cfg.logger.tags),
            job_type=cfg.method.name,
            name=job_name,
            dir=str(run_dir),
            config=OmegaConf.to_container(cfg, resolve=True),
        )
        self.run.define_metric(STEP)
        for prefix in ("data", "eval", "samples"):
            self.run.define_metric(f"{prefix}/*", step_metric=STEP)

    def stage(self, record: StageRecord) -> None:
        """A finished (or reused) stage: its row of the stage table, and its per-iteration data."""
        if self.run is None:
            return
        self.stages.append(record)
        t = iteration_of(record.label)
        if t is None:
            return
        name = record.label.split("/", 1)[1]
        if record.stage == "audit":
            metrics = numbers(record.counts, "data/audit")
            self._histogram(record, metrics)
        else:
            spec = DATA.get(record.stage, {})
            metrics = {f"data/{m.format(name=name)}": record.counts.get(k) for m, k in spec.items()}
        metrics = {k: v for k, v in metrics.items() if v is not None}
        if metrics:
            self.run.log({**metrics, STEP: t})
        if record.stage in ("build_pairs", "best_worst_pairs"):
            self._pair_samples(record, t)

    def _histogram(self, record: StageRecord, metrics: dict) -> None:
        """The reward gaps of the candidate pairs as a W&B histogram (the threshold is `data/audit/threshold`)."""
        import wandb

        path = Path(record.path) / "audit.json"
        hist = json.loads(path.read_text())["gap_histogram"] if path.is_file() else None
        if hist and hist["counts"]:
            metrics["data/audit/gap_histogram"] = wandb.Histogram(np_histogram=(hist["counts"], hist["edges"]))

    def _pair_samples(self, record: StageRecord, t: int) -> None:
        """A table of sample pairs, to read what the model is taught."""
        import wandb

        from synpo.io import read_jsonl

        columns = ["prompt", "rejected", "chosen", "gap", "rejected_words", "chosen_words"]
        rows = [
            [r["prompt"], r["rejected"], r["chosen"], r["gap"], len(r["rejected"].split()), len(r["chosen"].split())]
            for r in read_jsonl(Path(record.path) / "pairs.jsonl")[:SAMPLE_ROWS]
        ]
        self.run.log({f"samples/{record.label}": wandb.Table(columns=columns, data=rows), STEP: t})

    def evaluation(self, name: str, iteration: int, metrics: dict, answers: list[list] | None = None) -> None:
        """One evaluated model's suite metrics against `iteration`, and a table of its sample answers
        (instruction, M0's answer, this model's answer, verdict)."""
        if self.run is None:
            return
        import wandb

        self.last_eval = numbers(metrics, "eval")
        row = {**self.last_eval, STEP: iteration}
        if answers:
            columns = ["instruction", "M0 answer", f"{name} answer", "verdict"]
            row[f"samples/eval/{name}"] = wandb.Table(columns=columns, data=answers[:SAMPLE_ROWS])
        self.run.log(row)

    def finish(self, summary: dict) -> None:
        if self.run is None:
            return
        import wandb

        columns = ["label", "stage", "reused", "seconds", "counts"]
        rows = [[r.label, r.stage, r.reused, round(r.seconds, 2), json.dumps(r.counts)] for r in self.stages]
        self.run.log({"stages": wandb.Table(columns=columns, data=rows)})
        self.run.summary.update({**summary, **self.last_eval})
        self.run.finish()
        if self.run.settings.mode == "offline":
            log.info("W&B run saved offline: wandb sync %s", self.run.dir.removesuffix("/files"))
