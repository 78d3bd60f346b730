"""Training on many devices: a training stage runs under `accelerate launch` (DDP, DeepSpeed or FSDP) when the
`distributed` group says so, and in the synpo process otherwise (`distributed=single`, the default).

    synpo (the job: runs the stages, generation included)
      training stage -> launch("simpo", ...) writes <stage>/launch/{spec.json, rows.jsonl, accelerate.yaml}
        [launch_prefix, e.g. srun]  python -m synpo.train_worker launch spec.json        (once per machine)
          python -m accelerate.commands.launch --config_file accelerate.yaml --machine_rank R
                                   -m synpo.train_worker train spec.json            (processes_per_machine)
            each process: the same `synpo.training` function, under torch.distributed; the main process
            saves the model (safetensors) and writes result.json, which the job reads back.

The trainer's `batch_size` is the global batch whatever the device count: gradient accumulation is
batch_size / (per_device_batch_size * world size), and a config where that is not a whole number fails at
start-up. How a stage runs is not part of its cache key (like `threads`): a model trained on one GPU is reused
by a run on eight, which computes the same global batches. `mixed_precision` is not in the key either.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from synpo import config as schemas
from synpo.config import DistributedConfig

log = logging.getLogger(__name__)

# Set in the processes accelerate starts: there the training functions run directly.
WORKER_ENV = "SYNPO_TRAIN_WORKER"
# The accelerate distributed types each backend must give; accelerate falls back to DDP silently, e.g. FSDP on CPU.
DISTRIBUTED_TYPES = {"ddp": ("MULTI_GPU", "MULTI_CPU"), "deepspeed": ("DEEPSPEED",), "fsdp": ("FSDP",)}

_active = DistributedConfig()


def configure(cfg) -> DistributedConfig:
    """Make `cfg` (the `distributed` node, or its dataclass) the launcher of this process's training stages."""
    global _active
    if not isinstance(cfg, DistributedConfig):
        from omegaconf import OmegaConf

        plain = OmegaConf.to_container(cfg, resolve=True)
        cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(DistributedConfig), plain))
    _active = cfg
    return cfg


def active() -> DistributedConfig:
    return _active


def on_cuda(d: DistributedConfig | None = None) -> bool:
    """Whether the trainers run on CUDA devices: the launched ones on `device`, the in-process one where CUDA is."""
    import torch

    d = d or _active
    return d.device == "cuda" if d.launcher == "accelerate" else torch.cuda.is_available()


def mixed_precision(d: DistributedConfig | None = None) -> str:
    """`distributed.mixed_precision` with `auto` resolved for the device the trainers run on."""
    from synpo.models import native_bf16

    d = d or _active
    if d.mixed_precision != "auto":
        return d.mixed_precision
    return "bf16" if native_bf16(on_cuda(d)) else "no"


def world_size(d: DistributedConfig | None = None) -> int:
    d = d or _active
    return 1 if d.launcher == "inprocess" else d.processes_per_machine * d.num_machines


def spawns(d: DistributedConfig | None = None) -> bool:
    """True when a training call must start `accelerate launch` (not already inside a launched process)."""
    return (d or _active).launcher == "accelerate" and not os.environ.get(WORKER_ENV)


def check(d: DistributedConfig) -> None:
    """Start-up checks of the `distributed` group that tie its fields together (their ranges are the schema's);
    the message names the key."""
    if d.launcher == "inprocess" and world_size(dataclasses.replace(d, launcher="accelerate")) > 1:
        raise ValueError(
            "distributed.launcher=inprocess trains on one device: set processes_per_machine=1 and num_machines=1, "
            "or choose distributed=ddp / deepspeed_zero3"
        )
    if d.num_machines > 1 and not d.main_process_ip:
        raise ValueError("distributed.num_machines > 1 needs distributed.main_process_ip (the rank-0 machine)")
    if d.backend in ("deepspeed", "fsdp") and d.device == "cpu":
        # accelerate runs FSDP only on GPU-like devices: on CPU it would silently train with DDP.
        raise ValueError(f"distributed.backend={d.backend} needs distributed.device=cuda")


def check_distributed_type(distributed_type, d: DistributedConfig | None = None) -> None:
    """In a launched process: fail unless accelerate set up the backend that was asked for."""
    d = d or _active
    got = getattr(distributed_type, "value", str(distributed_type))
    if d.launcher == "accelerate" and got not in DISTRIBUTED_TYPES[d.backend]:
        raise RuntimeError(
            f"distributed.backend={d.backend} asked for {' or '.join(DISTRIBUTED_TYPES[d.backend])}, but accelerate "
            f"set up {got} (does this device support it?)"
        )


def check_batch(key: str, batch_size: int, per_device: int, d: DistributedConfig | None = None) -> int:
    """Gradient accumulation steps that keep `batch_size` global; fails naming `key` when it does not divide."""
    world = world_size(d)
    if batch_size % (per_device * world):
        raise ValueError(
            f"{key}.batch_size={batch_size} is not a multiple of {key}.per_device_batch_size={per_device} x "
            f"{world} processes (distributed.processes_per_machine x distributed.num_machines)"
        )
    return batch_size // (per_device * world)


def accelerate_config(d: DistributedConfig) -> dict:
    """accelerate's config file, laid out like alignment-handbook's recipes/accelerate_configs/*.yaml."""
    cfg = {
        "compute_environment": "LOCAL_MACHINE",
        "debug": False,
        "distributed_type": {"deepspeed": "DEEPSPEED", "fsdp": "FSDP"}.get(d.backend, "MULTI_GPU"),
        "downcast_bf16": "no",
        "machine_rank": 0,
        "main_training_function": "main",
        "mixed_precision": mixed_precision(d),
        "num_machines": d.num_machines,
        # accelerate counts the processes of all machines.
        "num_processes": world_size(d),
        "rdzv_backend": "static",
        "same_network": True,
        "tpu_env": [],
        "tpu_use_cluster": False,
        "tpu_use_sudo": False,
        # CPU processes are started like GPU ones (torchrun); the trainers then run on the CPU with gloo.
        "use_cpu": False,
    }
    if d.backend == "deepspeed":
        cfg["deepspeed_config"] = dataclasses.asdict(d.deepspeed)
    elif d.backend == "fsdp":
        cfg["fsdp_config"] = {k: v for k, v in dataclasses.asdict(d.fsdp).items() if v is not None}
    else:
        cfg["gpu_ids"] = "all"
    if d.num_machines > 1:
        cfg.update(main_process_ip=d.main_process_ip, main_process_port=d.main_process_port or 29500)
    return cfg


def machine_rank(d: DistributedConfig, env: dict | None = None) -> int:
    env = os.environ if env is None else env
    if d.machine_rank is not None:
        return d.machine_rank
    return int(env.get("SLURM_PROCID") or env.get("NODE_RANK") or 0)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accelerate_command(d: DistributedConfig, config_file: Path, spec: Path, rank: int) -> list[str]:
    """The `accelerate launch` command one machine runs (`python -m synpo.train_worker launch` builds it)."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_file)]
    cmd += ["--num_processes", str(world_size(d)), "--num_machines", str(d.num_machines)]
    cmd += ["--machine_rank", str(rank), "--mixed_precision", mixed_precision(d), "--dynamo_backend", "no"]
    if d.num_machines > 1:
        cmd += ["--main_process_ip", str(d.main_process_ip), "--main_process_port", str(d.main_process_port or 29500)]
    else:
        # Concurrent jobs of a sweep on one machine must not share a rendezvous port.
        cmd += ["--main_process_port", str(d.main_process_port or free_port())]
    return [*cmd, "-m", "synpo.train_worker", "train", str(spec)]


def job_command(d: DistributedConfig, spec: Path) -> list[str]:
    """What the synpo job runs for a training stage: once per machine, through `launch_prefix` (e.g. srun)."""
    return [*d.launch_prefix, sys.executable, "-m", "synpo.train_worker", "launch", str(spec)]


def _encode(value):
    if dataclasses.is_dataclass(value):
        return {"__dataclass__": type(value).__name__, **dataclasses.asdict(value)}
    if isinstance(value, Path):
        return str(value)
    return value


def decode(value):
    if isinstance(value, dict) and "__dataclass__" in value:
        fields = {k: v for k, v in value.items() if k != "__dataclass__"}
        return getattr(schemas, value["__dataclass__"])(**fields)
    return value


def write_spec(folder: Path, function: str, rows: list[dict], d: DistributedConfig, **call) -> Path:
    """The launch folder: the call (`synpo.training.<function>`), its rows, and accelerate's config file."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "rows.jsonl").open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    (folder / "accelerate.yaml").write_text(yaml.safe_dump(accelerate_config(d), sort_keys=True))
    spec = {
        "function": function,
        "rows": str(folder / "rows.jsonl"),
        "kwargs": {k: _encode(v) for k, v in call.items()},
        "distributed": dataclasses.asdict(d),
        "accelerate_config": str(folder / "accelerate.yaml"),
        "result": str(folder / "result.json"),
    }
    (folder / "spec.json").write_text(json.dumps(spec, indent=1))
    return folder / "spec.json"


def launch(function: str, rows: list[dict], out: Path, **call) -> dict:
    """Run `synpo.training.<function>(rows=rows, out=out, **call)` on `world_size()` processes; return its stats."""
    import shutil

    d = _active
    folder = Path(out) / "launch"
    shutil.rmtree(folder, ignore_errors=True)
    spec = write_spec(folder, function, rows, d, out=Path(out), **call)
    cmd = job_command(d, spec)
    log.info("%s on %d processes (%s): %s", function, world_size(d), d.name, " ".join(cmd))
    result = subprocess.run(cmd)
    if result.returncode:
        raise RuntimeError(f"{function} under accelerate failed (exit {result.returncode}); command: {' '.join(cmd)}")
    stats = json.loads((folder / "result.json").read_text())
    shutil.rmtree(folder)
    return stats
