"""Weights & Biases: one run per Hydra job, offline by default, with the resolved config and a row of
counts and timings per stage. API keys come from the environment only, never from the config."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from synpo.stage import StageRecord

log = logging.getLogger(__name__)


SAMPLE_ROWS = 20


class Tracker:
    def __init__(self, cfg: DictConfig, run_dir: Path, job_name: str, group: str | None):
        self.run = None
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

    def stage(self, record: StageRecord) -> None:
        if self.run is None:
            return
        numbers = {k: v for k, v in record.counts.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        numbers.update(seconds=record.seconds, reused=int(record.reused))
        self.run.log({f"stages/{record.label}/{k}": v for k, v in numbers.items()})
        if record.stage in ("build_pairs", "best_worst_pairs"):
            self._pair_samples(record)

    def _pair_samples(self, record: StageRecord) -> None:
        """A table of sample pairs, to read what the model is taught."""
        import wandb

        from synpo.io import read_jsonl

        columns = ["prompt", "rejected", "chosen", "gap"]
        rows = read_jsonl(Path(record.path) / "pairs.jsonl")[:SAMPLE_ROWS]
        table = wandb.Table(columns=columns, data=[[r[c] for c in columns] for r in rows])
        self.run.log({f"samples/{record.label}": table})

    def finish(self, summary: dict) -> None:
        if self.run is None:
            return
        self.run.summary.update(summary)
        self.run.finish()
        if self.run.settings.mode == "offline":
            log.info("W&B run saved offline: wandb sync %s", self.run.dir.removesuffix("/files"))
