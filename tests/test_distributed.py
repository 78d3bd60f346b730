"""Training on many processes through `accelerate launch`, and the launch configs that cannot run here.

The 2-process run uses the real launch path (`python -m synpo.train_worker` under `accelerate launch`, gloo on
two CPU processes). Tolerance: the two runs differ only in float summation order (gloo's all-reduce against
gradient accumulation), so losses agree to 1e-4 (they are rounded to 4 decimals) and weights to 1e-5, while
the training moves the weights by far more than that.
"""

from __future__ import annotations

import dataclasses
import sys

import pytest
import yaml
from conftest import preference_rows
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from safetensors.torch import load_file

from synpo import distributed
from synpo.cli import CONF_DIR, validate
from synpo.config import DistributedConfig, GenerationConfig, OptimizerConfig
from synpo.errors import ConfigError
from synpo.generation import ShardedGenerator, make_generator, vllm_engine_kwargs
from synpo.training import simpo

PAIRS = [
    ("Name a colour.", "Blue is a calm colour of sky and sea.", "no no no"),
    ("Say hello.", "Hello! How can I help you today?", "bye bye bye"),
    ("Count to three.", "One, two, three.", "three three three three"),
    ("Give a fruit.", "An apple, crisp and sweet.", "rock"),
    ("What is 2+2?", "2 + 2 = 4.", "5 5 5 5 5"),
    ("Name a planet.", "Mars, the red planet.", "the the the"),
    ("A word for happy?", "Joyful.", "sad sad"),
    ("Say thanks.", "Thank you very much!", "no"),
]


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.fixture
def single():
    """Whatever a test configures, later tests train in-process again."""
    yield
    distributed.configure(DistributedConfig())


def test_two_cpu_processes_train_like_one_with_the_same_global_batch(tiny_model, tmp_path, single):
    rows = preference_rows(PAIRS)
    # Global batch 4: one process x 2 per device x 2 accumulation steps; two processes x 2 per device x 1.
    cfg = OptimizerConfig(
        beta=2.0,
        gamma=1.6,
        learning_rate=5e-3,
        num_epochs=1,
        batch_size=4,
        per_device_batch_size=2,
        warmup_ratio=0.0,
        lr_scheduler="constant",
        max_length=128,
        save_steps=None,
    )
    distributed.configure(DistributedConfig())
    one = simpo(str(tiny_model), rows, cfg, tmp_path / "one")
    two_procs = DistributedConfig(name="ddp_cpu", launcher="accelerate", device="cpu", processes_per_machine=2)
    distributed.configure(two_procs)
    two = simpo(str(tiny_model), rows, cfg, tmp_path / "two")

    assert one["steps"] == two["steps"] == 2
    assert (one["processes"], two["processes"]) == (1, 2)
    assert abs(one["train_loss"] - two["train_loss"]) <= 1e-4
    assert abs(one["final_loss"] - two["final_loss"]) <= 1e-4
    start = load_file(tiny_model / "model.safetensors")
    w1 = load_file(tmp_path / "one" / "model" / "model.safetensors")
    w2 = load_file(tmp_path / "two" / "model" / "model.safetensors")
    assert w1.keys() == w2.keys()
    moved = max(float((w1[k] - start[k]).abs().max()) for k in w1)
    differ = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    assert moved > 1e-3 and differ < 1e-5, (moved, differ)
    # Saved once, by the main process, as safetensors; the launch folder and checkpoints are gone.
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["model"]
    assert (tmp_path / "two" / "model" / "tokenizer_config.json").is_file()


def test_deepspeed_zero3_reaches_accelerate_as_alignment_handbook_sets_it(tmp_path, single):
    d = distributed.configure(composed("distributed=deepspeed_zero3").distributed)
    distributed.check(d)
    spec = distributed.write_spec(tmp_path, "simpo", [{"prompt": "p"}], d, model_path="m", seed=1)
    written = yaml.safe_load((tmp_path / "accelerate.yaml").read_text())
    # alignment-handbook's recipes/accelerate_configs/zero3.yaml, key for key.
    assert written == {
        "compute_environment": "LOCAL_MACHINE",
        "debug": False,
        "deepspeed_config": {
            "deepspeed_multinode_launcher": "standard",
            "offload_optimizer_device": "none",
            "offload_param_device": "none",
            "zero3_init_flag": True,
            "zero3_save_16bit_model": True,
            "zero_stage": 3,
        },
        "distributed_type": "DEEPSPEED",
        "downcast_bf16": "no",
        "machine_rank": 0,
        "main_training_function": "main",
        "mixed_precision": "bf16",
        "num_machines": 1,
        "num_processes": 8,
        "rdzv_backend": "static",
        "same_network": True,
        "tpu_env": [],
        "tpu_use_cluster": False,
        "tpu_use_sudo": False,
        "use_cpu": False,
    }
    cmd = distributed.accelerate_command(d, tmp_path / "accelerate.yaml", spec, rank=0)
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    flags = dict(zip(cmd[3:-4:2], cmd[4:-4:2], strict=True))
    assert flags["--config_file"] == str(tmp_path / "accelerate.yaml")
    assert (flags["--num_processes"], flags["--num_machines"], flags["--machine_rank"]) == ("8", "1", "0")
    assert flags["--mixed_precision"] == "bf16"
    assert cmd[-4:] == ["-m", "synpo.train_worker", "train", str(spec)]
    assert distributed.job_command(d, spec)[-4:] == ["-m", "synpo.train_worker", "launch", str(spec)]
    # The trainers get bf16 autocast and the 8-process accumulation: 128 = 2 per device x 8 x 8 steps.
    from synpo.training import _common_args

    args = _common_args(OptimizerConfig(batch_size=128, per_device_batch_size=2), tmp_path, 0)
    assert (args["bf16"], args["fp16"], args["use_cpu"], args["gradient_accumulation_steps"]) == (True, False, False, 8)


def test_fsdp_reaches_the_launched_processes_as_full_shard_decoder_layer_units_and_a_full_state_dict(
    tmp_path, single, tiny_model, monkeypatch
):
    """accelerate's own launcher turns the written config into the environment of the processes it starts, and its
    FSDP plugin (what the Trainer builds in each process) reads it: checked here without a GPU."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import FullyShardedDataParallelPlugin, prepare_multi_gpu_env
    from torch.distributed.fsdp import ShardingStrategy, StateDictType

    from synpo.models import load_causal_lm

    d = distributed.configure(composed("distributed=fsdp").distributed)
    distributed.check(d)
    spec = distributed.write_spec(tmp_path, "simpo", [{"prompt": "p"}], d, model_path="m", seed=1)
    written = yaml.safe_load((tmp_path / "accelerate.yaml").read_text())
    assert written["distributed_type"] == "FSDP" and written["num_processes"] == 8
    assert written["fsdp_config"]["fsdp_sharding_strategy"] == "FULL_SHARD"
    assert "fsdp_transformer_layer_cls_to_wrap" not in written["fsdp_config"]  # the model's _no_split_modules
    cmd = distributed.accelerate_command(d, tmp_path / "accelerate.yaml", spec, rank=0)
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(cmd[3:]))
    env = prepare_multi_gpu_env(args)
    assert env["ACCELERATE_USE_FSDP"] == "true" and env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    assert env["FSDP_SYNC_MODULE_STATES"] == env["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "true"
    for key, value in env.items():
        if key.startswith("FSDP_"):
            monkeypatch.setenv(key, value)
    # Syncing module states asks for the current GPU: off for building the plugin here.
    monkeypatch.setenv("FSDP_SYNC_MODULE_STATES", "false")
    monkeypatch.setenv("FSDP_CPU_RAM_EFFICIENT_LOADING", "false")
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.sharding_strategy == ShardingStrategy.FULL_SHARD
    assert plugin.state_dict_type == StateDictType.FULL_STATE_DICT and plugin.use_orig_params
    plugin.set_auto_wrap_policy(load_causal_lm(str(tiny_model)))
    assert plugin.transformer_cls_names_to_wrap == ["LlamaDecoderLayer"]


def test_a_launched_process_fails_unless_accelerate_set_up_the_backend_asked_for(single):
    """accelerate 1.15 keeps FSDP off on CPU and runs DDP instead: the trainer checks what it got."""
    from accelerate.utils import DistributedType

    fsdp = composed("distributed=fsdp").distributed
    with pytest.raises(RuntimeError, match="distributed.backend=fsdp asked for FSDP, but accelerate set up MULTI_CPU"):
        distributed.check_distributed_type(DistributedType.MULTI_CPU, distributed.configure(fsdp))
    distributed.check_distributed_type(DistributedType.FSDP, distributed.configure(fsdp))
    distributed.check_distributed_type(
        DistributedType.MULTI_CPU, distributed.configure(composed("distributed=ddp_cpu").distributed)
    )
    distributed.check_distributed_type(DistributedType.NO, distributed.configure(DistributedConfig()))  # in-process


def test_multi_node_takes_its_rank_from_slurm_and_launches_through_srun(tmp_path, single):
    cfg = composed("distributed=multi_node", "distributed.main_process_ip=node-0", "distributed.num_machines=4")
    d = distributed.configure(cfg.distributed)
    distributed.check(d)
    assert distributed.world_size(d) == 32
    assert distributed.machine_rank(d, {"SLURM_PROCID": "3"}) == 3
    assert distributed.machine_rank(dataclasses.replace(d, machine_rank=1), {"SLURM_PROCID": "3"}) == 1
    spec = tmp_path / "spec.json"
    job = distributed.job_command(d, spec)
    assert job[:3] == ["srun", "--overlap", "--nodes=4"] and "--ntasks-per-node=1" in job
    cmd = distributed.accelerate_command(d, tmp_path / "a.yaml", spec, rank=3)
    flags = dict(zip(cmd[3:-4:2], cmd[4:-4:2], strict=True))
    assert flags["--machine_rank"] == "3" and flags["--num_processes"] == "32" and flags["--num_machines"] == "4"
    assert (flags["--main_process_ip"], flags["--main_process_port"]) == ("node-0", "29500")
    assert distributed.accelerate_config(d)["main_process_ip"] == "node-0"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["distributed=ddp", "optimizer.batch_size=12", "optimizer.per_device_batch_size=1"],
            "optimizer.batch_size=12",
        ),
        (
            ["distributed=ddp_cpu", "optimizer.per_device_batch_size=2", "method.generator_sft.batch_size=6"],
            "method.generator_sft.batch_size=6",
        ),
        (["distributed=multi_node"], "distributed.main_process_ip"),
        (["distributed.processes_per_machine=2"], "distributed.launcher=inprocess"),
        (["distributed=ddp", "distributed.backend=megatron"], "distributed.backend='megatron'"),
        (["distributed=fsdp", "distributed.device=cpu"], "distributed.backend=fsdp needs distributed.device=cuda"),
    ],
)
def test_a_batch_that_devices_cannot_share_fails_at_start_up_naming_the_key(overrides, message, single):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        validate(composed(*overrides))


def test_vllm_tensor_parallel_reaches_the_engine_of_every_data_parallel_shard():
    cfg = composed("generation=vllm", "generation.tensor_parallel_size=4", "generation.data_parallel_size=2")
    kwargs = vllm_engine_kwargs("m", cfg.generation, "bfloat16")
    assert (kwargs["tensor_parallel_size"], kwargs["dtype"]) == (4, "bfloat16")
    # With data_parallel_size 2, two engines (one per shard process) each span 4 GPUs: 8 in all.
    sharded = make_generator("m", GenerationConfig(**OmegaConf.to_container(cfg.generation)), "bfloat16")
    assert isinstance(sharded, ShardedGenerator) and sharded.shards == 2
    shard_kwargs = vllm_engine_kwargs("m", GenerationConfig(**sharded.cfg), "bfloat16")
    assert shard_kwargs["tensor_parallel_size"] == 4 and sharded.cfg["data_parallel_size"] == 1


def test_torchs_fully_shard_on_two_gloo_processes_trains_like_one_process():
    """FSDP2 itself on CPU (what `distributed=fsdp` cannot show here: accelerate keeps FSDP off on CPU): two processes
    holding half of every weight take the same steps as one process holding all of it."""
    import json
    import os
    import subprocess
    from pathlib import Path

    from fsdp_worker import losses, tiny_llama

    worker = Path(__file__).with_name("fsdp_worker.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    cmd += ["--master_port", str(distributed.free_port()), str(worker)]
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sharded = json.loads(result.stdout.strip().splitlines()[-1])
    assert sharded["parameter_type"] == "DTensor"
    assert sharded["losses"] == pytest.approx(losses(tiny_llama()), abs=1e-5)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the resolution on a machine without CUDA")
def test_auto_mixed_precision_reaches_accelerate_resolved_and_never_bf16_for_a_missing_gpu(tmp_path, single):
    cpu = distributed.configure(composed("distributed=ddp_cpu", "distributed.mixed_precision=auto").distributed)
    gpu = dataclasses.replace(cpu, device="cuda")
    assert distributed.mixed_precision(gpu) == "no" and not distributed.on_cuda(cpu) and distributed.on_cuda(gpu)
    resolved = distributed.mixed_precision(cpu)
    assert resolved in ("bf16", "no") and distributed.accelerate_config(cpu)["mixed_precision"] == resolved
    command = distributed.accelerate_command(cpu, tmp_path / "accelerate.yaml", tmp_path / "spec.json", 0)
    assert command[command.index("--mixed_precision") + 1] == resolved
    explicit = dataclasses.replace(cpu, mixed_precision="fp16")
    assert distributed.mixed_precision(explicit) == "fp16"
