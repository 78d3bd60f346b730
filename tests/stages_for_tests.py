"""Stage functions for the cache tests (a stage is a module-level `run`; the module names the stage)."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path


def run(out: Path, config: dict, source: Path | None = None) -> dict:
    text = (source / "value.txt").read_text() if source else ""
    (out / "value.txt").write_text(text + config["value"])
    if config.get("sleep"):
        (out / "started").write_text(str(os.getpid()))
        time.sleep(config["sleep"])
    if config.get("fail"):
        raise RuntimeError("stage failed")
    counts = {"length": len(text) + len(config["value"])}
    if config.get("collect"):
        t0 = time.perf_counter()
        gc.collect()
        counts["collect_seconds"] = time.perf_counter() - t0
    return counts
