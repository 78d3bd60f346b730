"""The entry of a training stage run under `accelerate launch` (see `synpo/distributed.py`).

    python -m synpo.train_worker launch SPEC   # once per machine: runs `accelerate launch ... train SPEC`
    python -m synpo.train_worker train SPEC    # in every process accelerate starts: the training call itself

SPEC is the `spec.json` a training stage wrote: which `synpo.training` function to call, with what (its rows in
`rows.jsonl`), and the `distributed` config. The main process writes the function's stats to `result.json`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from synpo import distributed
from synpo.config import DeepSpeedConfig, DistributedConfig, FSDPConfig


def load_spec(path: Path) -> tuple[dict, DistributedConfig]:
    spec = json.loads(Path(path).read_text())
    d = dict(spec["distributed"])
    d["deepspeed"] = DeepSpeedConfig(**d["deepspeed"])
    d["fsdp"] = FSDPConfig(**d["fsdp"])
    return spec, DistributedConfig(**d)


def launch(spec_path: Path) -> int:
    spec, d = load_spec(spec_path)
    cmd = distributed.accelerate_command(d, Path(spec["accelerate_config"]), spec_path, distributed.machine_rank(d))
    print("synpo.train_worker:", " ".join(cmd), file=sys.stderr, flush=True)
    env = {**os.environ, distributed.WORKER_ENV: "1"}
    return subprocess.run(cmd, env=env).returncode


def train(spec_path: Path) -> int:
    from synpo import training
    from synpo.io import read_jsonl

    spec, d = load_spec(spec_path)
    distributed.configure(d)
    os.environ[distributed.WORKER_ENV] = "1"
    kwargs = {k: distributed.decode(v) for k, v in spec["kwargs"].items()}
    kwargs["out"] = Path(kwargs["out"])
    rows = read_jsonl(Path(spec["rows"]))
    stats = getattr(training, spec["function"])(rows=rows, **kwargs)
    if int(os.environ.get("RANK", "0")) == 0:
        Path(spec["result"]).write_text(json.dumps(stats))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("launch", "train"):
        print(__doc__, file=sys.stderr)
        return 2
    role, spec = argv
    return launch(Path(spec)) if role == "launch" else train(Path(spec))


if __name__ == "__main__":
    sys.exit(main())
