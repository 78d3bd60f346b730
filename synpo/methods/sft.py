"""The SFT row of Table 2: M0, the SFT model every method starts from, evaluated as it is.

synpo experiment=cpu_sft logger=none        # M0 on the demo suites
synpo experiment=paper_sft_mistral          # zephyr-7b-sft-full on the paper's benchmarks
"""

from __future__ import annotations

from omegaconf import DictConfig

from synpo.methods.recipe import m0_of
from synpo.stage import Artifact, Runner


def run(cfg: DictConfig, runner: Runner) -> dict[str, Artifact]:
    """Returns {"M0": ...}; the run's evaluation (`evaluation=...`) scores it."""
    m0 = m0_of(cfg, runner)
    return {"M0": m0}
