"""Wall time of a 3-value beta sweep through the stage cache against three independent runs without it.

    python benchmarks/sweep.py [--betas 2,4,6] [--keep DIR]

Both sides run the real `synpo` command on the embedded model with the same small config, one after the
other in this process: (a) `synpo -m optimizer.beta=...` with one shared stage cache, (b) one `synpo` run
per beta, each with an empty cache of its own. It prints both wall times, their ratio (target <= 0.5),
how many times each stage was computed in (a): every stage before SimPO once, and each job's overhead: its wall
time less the seconds of the stages it computed (summary.json's `seconds_computed`): interpreter start-up, imports,
config validation, model checks, reading cached entries. In (a) one process runs every job, so the imports are paid
once; the printed figure is (a)'s total overhead divided by the number of jobs. Also printed: the SimPO stage's
seconds per beta (and its training loop's), and the stages before SimPO as timed in (a)'s first job and in each
run of (b): the sides run one after the other, so on a shared machine a load change between them shows there, with
the ratio recomputed at (b)'s timing of those stages.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

SYNPO = Path(sys.executable).parent / "synpo"
MODELS = Path(os.environ.get("SYNPO_HOME", Path.home() / ".cache" / "synpo")) / "models"
SMALL = [
    "logger=none",
    "evaluation=none",
    "method.iterations=1",
    "method.prompts_per_iteration=8",
    "method.pairs_per_iteration=8",
    "method.generator_seed_items=8",
    "method.improver_seed_items=8",
    "method.max_new_tokens.question=32",
    "method.max_new_tokens.answer=48",
    "method.max_new_tokens.rewrite=48",
    "reward.threshold=-1.0",
]


def synpo(args: list[str], cwd: Path, home: Path) -> float:
    env = {**os.environ, "SYNPO_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    result = subprocess.run(
        [str(SYNPO), *args, f"paths.models={MODELS}"], cwd=cwd, env=env, capture_output=True, text=True
    )
    if result.returncode:
        sys.exit(f"synpo {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def stages(root: Path) -> Iterator[dict]:
    """The stage records of every run summary under `root`."""
    for summary in root.rglob("summary.json"):
        yield from json.loads(summary.read_text())["stages"]


def computed_stages(root: Path) -> Counter:
    """How many times each stage label was computed (not reused) over all summaries under `root`."""
    counts: Counter = Counter()
    for stage in stages(root):
        counts[stage["label"]] += not stage["reused"]
    return counts


def seconds_computed(root: Path) -> float:
    return sum(json.loads(s.read_text())["seconds_computed"] for s in root.rglob("summary.json"))


def shared_seconds(root: Path) -> float:
    """Seconds of the stages computed under `root` other than SimPO: the work every side does once per run."""
    return sum(stage["seconds"] for stage in stages(root) if stage["stage"] != "simpo" and not stage["reused"])


def simpo_seconds(root: Path) -> list[tuple[float, float]]:
    """(stage seconds, training-loop seconds) of every SimPO stage computed under `root`: what an extra beta costs
    beyond its job's overhead, and how much of that is the optimizer steps themselves."""
    return [
        (stage["seconds"], stage["counts"].get("train_seconds", 0.0))
        for stage in stages(root)
        if stage["stage"] == "simpo" and not stage["reused"]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--betas", default="2,4,6")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    betas = args.betas.split(",")
    work = args.keep or Path(tempfile.mkdtemp(prefix="synpo-sweep-bench-"))
    work.mkdir(parents=True, exist_ok=True)

    (work / "cached").mkdir()
    cached = synpo(["-m", f"optimizer.beta={args.betas}", *SMALL], work / "cached", work / "cached" / "home")
    independent, overheads, shared = 0.0, [], []
    for beta in betas:
        run = work / f"independent-{beta}"
        run.mkdir()
        wall = synpo([f"optimizer.beta={beta}", *SMALL], run, run / "home")
        independent += wall
        overheads.append(wall - seconds_computed(run))
        shared.append(shared_seconds(run))

    print(f"sweep of {len(betas)} betas with the stage cache: {cached:8.1f} s")
    print(f"{len(betas)} independent runs without sharing:   {independent:8.1f} s")
    print(f"ratio: {cached / independent:.2f} (target <= 0.5)")
    sweep_overhead = (cached - seconds_computed(work / "cached")) / len(betas)
    print(
        f"per-job overhead (wall less computed stages): sweep {sweep_overhead:.1f} s, independent runs "
        f"{sum(overheads) / len(overheads):.1f} s"
    )
    first, mean = shared_seconds(work / "cached"), sum(shared) / len(shared)
    print(
        f"stages before SimPO: {first:.1f} s in the sweep's first job, {mean:.1f} s per independent run (mean); "
        "a difference is the machine's load changing between the sides"
    )
    print(f"ratio with those stages at the independent runs' mean: {(cached - first + mean) / independent:.2f}")
    simpo = simpo_seconds(work / "cached")
    if simpo:
        stage, loop = (sum(x) / len(simpo) for x in zip(*simpo, strict=True))
        print(f"SimPO stage per beta: {stage:.1f} s, of which {loop:.1f} s the training loop (mean of {len(simpo)})")
    print("\nstages computed in the cached sweep (label: times):")
    for label, n in computed_stages(work / "cached").items():
        print(f"  {label}: {n}")
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    print(f"\nwork folder: {work}")


if __name__ == "__main__":
    main()
