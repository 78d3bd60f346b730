"""Table 2's "Manual Collection" baseline: SimPO from M0 on human-labelled preference pairs, once.

The paper's row is SimPO on UltraFeedback binarized (`HuggingFaceH4/ultrafeedback_binarized`, `train_prefs`), with
SimPO's own recipes (its 21.5 / 20.8 / 16.8 for Mistral-Base are the SimPO paper's); `method.data` says where the
pairs come from (`preference_data` stage) and the `optimizer` group how SimPO trains (`policy` stage).

    synpo experiment=cpu_offline_simpo logger=none     # the demo's 64 shipped pairs (synpo/data/spa_seed_demo)
    synpo experiment=paper_offline_simpo_mistral       # 61k UltraFeedback pairs, SimPO's Mistral-Base recipe
"""

from __future__ import annotations

from omegaconf import DictConfig

from synpo.methods.baselines import train_simpo
from synpo.methods.recipe import m0_of, plain
from synpo.stage import Artifact, Runner
from synpo.stages import preference_data


def run(cfg: DictConfig, runner: Runner) -> dict[str, Artifact]:
    """Returns {"M0": ..., "M1": SimPO from M0 on the pairs}."""
    m0 = m0_of(cfg, runner)
    pairs = runner.run("preferences", preference_data.run, config={"data": plain(cfg.method.data)})
    return {"M0": m0, "M1": train_simpo(cfg, runner, "policy", m0, pairs)}
