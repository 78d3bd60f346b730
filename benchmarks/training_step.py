"""The project's SimPO stage against TRL's CPOTrainer called directly, same pairs and settings, side by side.

    python benchmarks/training_step.py [--pairs 16] [--batch 4] [--max-length 256] [--repeats 2] [--tiny]
                                       [--mixed-precision bf16]

(a) direct: `CPOTrainer(loss_type="simpo", cpo_alpha=0)` built by hand on the rows, trained, the model saved (what
a user of TRL alone writes to get a trained model); (b) stage: `synpo/stages/simpo.py`'s `run` on the same pairs
written as a preference set, which goes through `synpo.training.simpo` (length fitting, callbacks, the step bar,
saving). The sides alternate `--repeats` times and the best of each is kept (the machine is shared). Printed per
side: seconds per optimizer step inside the training loop (train_runtime / steps), the loop's tokens per second
(prompt + answer tokens of both answers, as TRL tokenized them), the wall time of the whole call (loading, dataset
preparation and saving included), and the stage / direct ratios (target <= 1.1). `--tiny`: a 2-layer random Llama
with the embedded model's tokenizer (framework overhead only); default: the embedded SmolLM2-135M.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

from datasets import Dataset  # noqa: E402
from distributed_step import embedded_model  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM  # noqa: E402
from trl.experimental.cpo import CPOConfig, CPOTrainer  # noqa: E402

from synpo import distributed  # noqa: E402
from synpo.config import DistributedConfig  # noqa: E402
from synpo.io import read_jsonl, write_json, write_jsonl  # noqa: E402
from synpo.stages import simpo as simpo_stage  # noqa: E402
from synpo.templates import chat  # noqa: E402
from synpo.training import CHECKPOINTING  # noqa: E402

SEED = Path(__file__).resolve().parent.parent / "synpo" / "data" / "seed_demo" / "train.jsonl"
SETTINGS = dict(beta=2.0, gamma=1.6, learning_rate=1e-6, num_epochs=1.0, warmup_ratio=0.0, lr_scheduler="cosine")


def pairs(n: int) -> list[dict]:
    """chosen = a seed item's gold answer, rejected = the next item's (an answer to another question)."""
    items = read_jsonl(SEED)[:n]
    return [
        {"prompt": a["prompt"], "chosen": a["gold"], "rejected": b["gold"]}
        for a, b in zip(items, items[1:] + items[:1], strict=True)
    ]


def tiny_model(folder: Path, base: str) -> str:
    import torch

    tokenizer = AutoTokenizer.from_pretrained(base)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=2048, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def direct(model: str, data: list[dict], args: argparse.Namespace, out: Path) -> dict:
    """TRL alone: the settings the stage passes, written out by hand."""
    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows = [
        {
            "prompt": chat(p["prompt"]),
            "chosen": [{"role": "assistant", "content": p["chosen"]}],
            "rejected": [{"role": "assistant", "content": p["rejected"]}],
        }
        for p in data
    ]
    config = CPOConfig(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=args.batch,
        learning_rate=SETTINGS["learning_rate"],
        num_train_epochs=SETTINGS["num_epochs"],
        warmup_steps=SETTINGS["warmup_ratio"],
        lr_scheduler_type=SETTINGS["lr_scheduler"],
        max_length=args.max_length,
        bf16=args.mixed_precision == "bf16",
        use_cpu=not distributed.on_cuda(),  # as the stage's trainer: transformers wants it for bf16 on a CPU
        **{CHECKPOINTING: False},  # TRL turns gradient checkpointing on by default; the stage's default is off
        dataloader_pin_memory=False,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        loss_type="simpo",
        cpo_alpha=0.0,
        beta=SETTINGS["beta"],
        simpo_gamma=SETTINGS["gamma"],
    )
    trainer = CPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(model, dtype="float32"),
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    tokens = sum(len(r["chosen_input_ids"]) + len(r["rejected_input_ids"]) for r in trainer.train_dataset)
    result = trainer.train()
    trainer.save_model(str(out / "model"))
    tokenizer.save_pretrained(str(out / "model"))
    steps, loop = int(result.global_step), float(result.metrics["train_runtime"])
    return {"steps": steps, "loop": loop, "tokens": tokens, "wall": time.perf_counter() - start}


def stage(model: str, data: list[dict], args: argparse.Namespace, out: Path) -> dict:
    """The SimPO stage's own entry point on the same pairs, written as the preference set it reads."""
    write_jsonl(out / "preferences" / "preference_set.jsonl", data)
    write_json(out / "m0" / "model.json", {"path": model})
    optimizer = {
        **SETTINGS,
        "batch_size": args.batch,
        "per_device_batch_size": args.batch,
        "max_length": args.max_length,
        "save_steps": None,
    }
    config = {"system_prompt": None, "optimizer": optimizer, "dtype": "float32", "peft": None, "seed": 0}
    start = time.perf_counter()
    stats = simpo_stage.run(out / "stage", config, out / "m0", out / "preferences")
    return {"steps": stats["steps"], "loop": stats["train_seconds"], "wall": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4, help="pairs per optimizer step (one process, no accumulation)")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--mixed-precision",
        choices=("no", "bf16"),
        default="no",
        help="both sides: bf16 autocast (what distributed=single_bf16 gives the CPU experiments) (default: no)",
    )
    parser.add_argument("--tiny", action="store_true", help="a 2-layer random Llama instead of the 135M model")
    parser.add_argument("--model", help="default: the embedded SmolLM2-135M (or its tokenizer with --tiny)")
    args = parser.parse_args()
    distributed.configure(DistributedConfig(mixed_precision=args.mixed_precision))
    data = pairs(args.pairs)
    best: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="synpo-train-bench-") as tmp:
        model = args.model or embedded_model()
        if args.tiny:
            model = tiny_model(Path(tmp) / "tiny", model)
        for i in range(args.repeats):
            for name, side in (("direct TRL CPOTrainer", direct), ("synpo SimPO stage", stage)):
                out = Path(tmp) / f"{name.split()[0]}-{i}"
                result = side(model, data, args, out)
                if name not in best or result["wall"] < best[name]["wall"]:
                    best[name] = result
    tokens = best["direct TRL CPOTrainer"]["tokens"]
    print(
        f"\nSimPO on {model}: {len(data)} pairs, batch {args.batch}, max length {args.max_length}, {tokens} tokens,"
        f" mixed precision {args.mixed_precision}"
    )
    print(f"{'':<24} {'steps':>5} {'s/step (loop)':>14} {'tokens/s':>9} {'wall s':>8}")
    for name, r in best.items():
        print(
            f"{name:<24} {r['steps']:>5} {r['loop'] / r['steps']:>14.3f} {tokens / r['loop']:>9.1f} {r['wall']:>8.2f}"
        )
    d, s = best["direct TRL CPOTrainer"], best["synpo SimPO stage"]
    step_ratio = (s["loop"] / s["steps"]) / (d["loop"] / d["steps"])
    print(f"stage / direct: s/step {step_ratio:.2f}, wall {s['wall'] / d['wall']:.2f} (target <= 1.1)")
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
