"""SimPO on the embedded model: full fine-tuning against LoRA (rank 16, all-linear), the same pairs, batch and
learning rate, side by side in one run. Each side trains in its own subprocess, since a process's peak memory only
grows: its peak resident memory (ru_maxrss) is that side's alone.

    python benchmarks/peft_step.py [--pairs 8] [--batch 4] [--max-length 128] [--lr 1e-5] [--model PATH]

Prints, per side: seconds per optimizer step inside the training loop (train_runtime / steps), the whole call's wall
time (loading and, for LoRA, the merge included), peak resident memory, trainable / total parameters, and the loss of
the last step.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from distributed_step import embedded_model, seed_pairs

from synpo.config import OptimizerConfig, PeftConfig
from synpo.training import simpo

SIDES = {
    "full fine-tuning": None,
    "LoRA r16 all-linear": PeftConfig(name="lora", adapter="lora", r=16, alpha=16, dropout=0.0),
}


def side(name: str, args) -> dict:
    """One side, in this process: train, then report what it cost."""
    cfg = OptimizerConfig(
        learning_rate=args.lr,
        num_epochs=1,
        batch_size=args.batch,
        per_device_batch_size=2,
        warmup_ratio=0.0,
        lr_scheduler="constant",
        max_length=args.max_length,
        save_steps=None,
    )
    with tempfile.TemporaryDirectory(prefix="synpo-peft-bench-") as tmp:
        start = time.perf_counter()
        stats = simpo(args.model, seed_pairs(args.pairs), cfg, Path(tmp), peft=SIDES[name])
        wall = time.perf_counter() - start
    # Linux reports ru_maxrss in KiB.
    return {**stats, "wall": wall, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4, help="global batch (2 per device)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-5, help="both sides")
    parser.add_argument("--model", help="default: the embedded SmolLM2-135M")
    parser.add_argument("--side", choices=list(SIDES), help=argparse.SUPPRESS)  # the subprocess of one side
    args = parser.parse_args()
    args.model = args.model or embedded_model()
    if args.side:
        print(json.dumps(side(args.side, args)))
        return
    results = {}
    for name in SIDES:
        cmd = [sys.executable, __file__, "--side", name, "--model", args.model, "--lr", str(args.lr)]
        cmd += ["--pairs", str(args.pairs), "--batch", str(args.batch), "--max-length", str(args.max_length)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[name] = json.loads(out.strip().splitlines()[-1])
    print(f"\nSimPO on {args.model}: {args.pairs} pairs, batch {args.batch}, length {args.max_length}, lr {args.lr:g}")
    print("\n| side | steps | s/step (training loop) | wall s | peak RSS MiB | trainable | total params | last loss |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        cells = [name, r["steps"], f"{r['train_seconds'] / r['steps']:.2f}", f"{r['wall']:.1f}"]
        cells += [f"{r['peak_rss_mib']:.0f}", f"{r['trainable_params']:,}", f"{r['total_params']:,}"]
        print("| " + " | ".join(map(str, [*cells, f"{r['final_loss']:.4f}"])) + " |")


if __name__ == "__main__":
    main()
