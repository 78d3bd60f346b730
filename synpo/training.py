"""Thin wrappers over TRL: SFT (generator, improver), SimPO (the policy) and DPO (SPA), saved as safetensors.

Each trainer writes checkpoints into `<out>/checkpoints` when `save_steps` is set; a stage that was
killed resumes from the last one (the stage cache keeps the unfinished `.partial` folder for that).
The final model goes to `<out>/model` and the checkpoints are removed.

With `distributed` set to a multi-process launcher (`synpo/distributed.py`), each function hands its call to
`accelerate launch`, whose processes run the same function; the main process saves the model, once.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from datasets import Dataset
from transformers import TrainingArguments

from synpo import distributed
from synpo.config import OptimizerConfig, RefinementConfig, SFTConfig, TrainerConfig
from synpo.models import load_causal_lm, load_tokenizer

log = logging.getLogger(__name__)

# transformers 5.2x renamed gradient checkpointing; TRL turns it on by default, so it is always set.
CHECKPOINTING = (
    "activation_checkpointing"
    if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
    else "gradient_checkpointing"
)


def _report_to() -> str:
    """Trainers log to the W&B run the entrypoint opened, if any."""
    wandb = sys.modules.get("wandb")
    return "wandb" if wandb is not None and wandb.run is not None else "none"


def _common_args(cfg: TrainerConfig, out: Path, seed: int) -> dict:
    """TrainingArguments shared by every trainer. `batch_size` is global: per device x processes x accumulation."""
    launch = distributed.active()
    accumulation = distributed.check_batch("trainer", cfg.batch_size, cfg.per_device_batch_size, launch)
    return dict(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=accumulation,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_epochs,
        warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler,
        weight_decay=cfg.weight_decay,
        max_length=cfg.max_length,
        **{CHECKPOINTING: cfg.gradient_checkpointing},
        bf16=launch.mixed_precision == "bf16",
        fp16=launch.mixed_precision == "fp16",
        use_cpu=launch.launcher == "accelerate" and launch.device == "cpu",
        dataloader_pin_memory=False,
        logging_steps=1,
        save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500,
        save_total_limit=1,
        report_to=_report_to(),
        seed=seed,
        data_seed=seed,
        disable_tqdm=False,
    )


def _train_and_save(trainer, out: Path, tokenizer) -> dict:
    checkpoints = out / "checkpoints"
    resume = checkpoints.is_dir() and any(checkpoints.glob("checkpoint-*"))
    if resume:
        log.info("resuming training from the last checkpoint in %s", checkpoints)
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    # Under several processes save_model gathers the weights (ZeRO-3) and only the main process writes them.
    trainer.save_model(str(out / "model"))
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(out / "model"))
        shutil.rmtree(checkpoints, ignore_errors=True)
    history = [h for h in trainer.state.log_history if "loss" in h]
    return {
        "train_loss": round(float(result.training_loss), 4),
        "final_loss": round(float(history[-1]["loss"]), 4) if history else None,
        "steps": int(result.global_step),
        "processes": int(trainer.args.world_size),
        "train_seconds": round(float(result.metrics["train_runtime"]), 2),
        "resumed": resume,
    }


def _fit(trainer_class, args, model_path: str, rows: list[dict], out: Path, dtype: str, **extra):
    """Build a TRL trainer on `model_path` and `rows`, train (resuming if a checkpoint exists), save."""
    tokenizer = load_tokenizer(model_path)
    trainer = trainer_class(
        model=load_causal_lm(model_path, dtype).train(),
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        **extra,
    )
    return trainer, _train_and_save(trainer, out, tokenizer)


def sft(
    model_path: str,
    rows: list[dict],
    cfg: SFTConfig,
    out: Path,
    *,
    dtype: str = "float32",
    seed: int = 0,
) -> dict:
    """Fine-tune on conversational prompt/completion rows; the loss covers the completion only."""
    if distributed.spawns():
        return distributed.launch("sft", rows, out, model_path=model_path, cfg=cfg, dtype=dtype, seed=seed)
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer

    args = TRLSFTConfig(**_common_args(cfg, out, seed), completion_only_loss=True, packing=False)
    return _fit(SFTTrainer, args, model_path, rows, out, dtype)[1]


def simpo_rows(tokenizer, rows: list[dict]) -> list[dict]:
    """Conversational preference rows as the text rows CPOTrainer is given: each answer ends with the template's
    end-of-turn token.

    CPOTrainer appends EOS to an answer whose last token is not EOS. A template that ends the assistant turn with
    EOS and a newline (ChatML: `<|im_end|>` `\\n`) would then train `<|im_end|>` `\\n` `<|im_end|>`: two stops and a
    newline the policy never generates, since generation stops at the first. The answer is cut after its last EOS
    instead, so SimPO's length-normalised reward averages exactly the tokens the policy generates.
    """
    eos = tokenizer.eos_token
    out = []
    for row in rows:
        prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
        texts = {"prompt": prompt}
        for key in ("chosen", "rejected"):
            full = tokenizer.apply_chat_template(row["prompt"] + row[key], tokenize=False)
            if not full.startswith(prompt):
                raise ValueError("the chat template renders the prompt differently with and without the answer")
            answer = full[len(prompt) :]
            texts[key] = answer[: answer.rindex(eos) + len(eos)] if eos and eos in answer else answer
        out.append(texts)
    return out


def simpo(
    model_path: str,
    rows: list[dict],
    cfg: OptimizerConfig,
    out: Path,
    *,
    dtype: str = "float32",
    seed: int = 0,
) -> dict:
    """SimPO: TRL's CPOTrainer with loss_type="simpo" and no behaviour-cloning term (cpo_alpha=0).

    TRL computes -log sigmoid(beta * (avg logp(chosen) - avg logp(rejected)) - gamma): `simpo_gamma`
    is the paper's gamma (TRL divides it by beta inside before multiplying back).
    """
    if distributed.spawns():
        return distributed.launch("simpo", rows, out, model_path=model_path, cfg=cfg, dtype=dtype, seed=seed)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    if cfg.loss != "simpo":
        raise ValueError(f"optimizer.loss={cfg.loss!r}: only 'simpo' is available")
    args = CPOConfig(
        **_common_args(cfg, out, seed), loss_type="simpo", cpo_alpha=0.0, beta=cfg.beta, simpo_gamma=cfg.gamma
    )
    return _fit(CPOTrainer, args, model_path, simpo_rows(load_tokenizer(model_path), rows), out, dtype)[1]


def dpo(
    model_path: str,
    rows: list[dict],
    cfg: OptimizerConfig,
    out: Path,
    *,
    refinement: RefinementConfig | None = None,
    extrapolation: float | None = None,
    dtype: str = "float32",
    seed: int = 0,
) -> dict:
    """DPO (TRL's sigmoid loss) from `model_path`, which is also the frozen reference.

    With `refinement`, SPA's label smoothing of the least confident pairs (`synpo/noise_aware_dpo.py`; `extrapolation`
    is the lambda of de-coupled noise detection); the counts of pairs seen and smoothed are returned with the stats.
    """
    if distributed.spawns():
        return distributed.launch(
            "dpo",
            rows,
            out,
            model_path=model_path,
            cfg=cfg,
            refinement=refinement,
            extrapolation=extrapolation,
            dtype=dtype,
            seed=seed,
        )
    from trl import DPOConfig

    from synpo.noise_aware_dpo import NoiseAwareDPOTrainer

    if cfg.loss != "dpo":
        raise ValueError(f"loss={cfg.loss!r}: this trainer runs 'dpo'")
    trainer, stats = _fit(
        NoiseAwareDPOTrainer,
        DPOConfig(**_common_args(cfg, out, seed), beta=cfg.beta, loss_type=["sigmoid"]),
        model_path,
        rows,
        out,
        dtype,
        ref_model=load_causal_lm(model_path, dtype),
        refinement=refinement or RefinementConfig(alpha=0.0),
        extrapolation=extrapolation,
    )
    if refinement:
        stats.update(pairs_seen=trainer.pairs_seen, pairs_smoothed=trainer.pairs_smoothed)
    return stats
