"""Thin wrappers over TRL: SFT (generator, improver), SimPO (the policy) and DPO (SPA), saved as safetensors.

Each trainer writes checkpoints into `<out>/checkpoints` when `save_steps` is set; a stage that was
killed resumes from the last one (the stage cache keeps the unfinished `.partial` folder for that).
The final model goes to `<out>/model` and the checkpoints are removed. With `peft` (a LoRA / QLoRA adapter,
`synpo/adapters.py`) the adapter goes to `<out>/adapter` and `<out>/model` is the base with it merged in.

With `distributed` set to a multi-process launcher (`synpo/distributed.py`), each function hands its call to
`accelerate launch`, whose processes run the same function; the main process saves the model, once.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

from datasets import Dataset
from transformers import ProgressCallback, TrainerCallback, TrainingArguments

from synpo import adapters, distributed
from synpo.config import OptimizerConfig, PeftConfig, RefinementConfig, SFTConfig, TrainerConfig
from synpo.console import FILE_ONLY
from synpo.errors import DataError
from synpo.models import load_causal_lm, load_tokenizer
from synpo.stage import running_label
from synpo.templates import cut_prompt

log = logging.getLogger(__name__)

# transformers 5.2x renamed gradient checkpointing; TRL turns it on by default, so it is always set.
CHECKPOINTING = (
    "activation_checkpointing"
    if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
    else "gradient_checkpointing"
)


class Curves(TrainerCallback):
    """A trainer's curves in the W&B run the entrypoint opened, under `train/<stage label>/` against their own step
    metric, so no two trainers share a chart. transformers' own WandbCallback is not used: it puts every trainer into
    `train/*` on one shared step and writes each trainer's arguments over the run's config (the resolved Hydra one).
    """

    def __init__(self, run, prefix: str):
        self.run, self.prefix, self.step = run, prefix, f"{prefix}/step"
        run.define_metric(self.step, hidden=True)
        run.define_metric(f"{prefix}/*", step_metric=self.step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        numbers = {k: v for k, v in (logs or {}).items() if isinstance(v, int | float) and not isinstance(v, bool)}
        if state.is_world_process_zero and numbers:
            self.run.log({**{f"{self.prefix}/{k}": v for k, v in numbers.items()}, self.step: state.global_step})


def _callbacks() -> list[TrainerCallback]:
    """Curves for the open W&B run, if any, named after the stage that trains (`synpo.stage.running_label`)."""
    wandb = sys.modules.get("wandb")
    if wandb is None or wandb.run is None:
        return []
    return [Curves(wandb.run, f"train/{running_label.get() or 'trainer'}")]


def _common_args(cfg: TrainerConfig, out: Path, seed: int) -> dict:
    """TrainingArguments shared by every trainer. `batch_size` is global: per device x processes x accumulation."""
    launch = distributed.active()
    accumulation = distributed.check_batch("trainer", cfg.batch_size, cfg.per_device_batch_size, launch)
    precision = distributed.mixed_precision(launch)
    return dict(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=accumulation,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_epochs,
        max_steps=cfg.max_steps or -1,
        warmup_steps=cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler,
        weight_decay=cfg.weight_decay,
        max_length=cfg.max_length,
        **{CHECKPOINTING: cfg.gradient_checkpointing},
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        # transformers refuses bf16 on a CPU-only machine unless told it trains on the CPU.
        use_cpu=not distributed.on_cuda(launch),
        dataloader_pin_memory=False,
        logging_steps=1,
        save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500,
        save_total_limit=1,
        report_to="none",
        seed=seed,
        data_seed=seed,
        disable_tqdm=False,
    )


def _train_and_save(trainer, out: Path, tokenizer, base: str, dtype: str, peft: PeftConfig | None) -> dict:
    checkpoints = out / "checkpoints"
    resume = checkpoints.is_dir() and any(checkpoints.glob("checkpoint-*"))
    if resume:
        log.info("resuming training from the last checkpoint in %s", checkpoints)
    trainable, total = adapters.trainable_parameters(trainer.model)
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    # Under several processes save_model gathers the weights (ZeRO-3) and only the main process writes them; for a
    # peft model, it writes the adapter only.
    saved = out / ("adapter" if peft else "model")
    trainer.save_model(str(saved))
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        if peft:
            adapters.merge(base, saved, out / "model", dtype)
        tokenizer.save_pretrained(str(out / "model"))
        shutil.rmtree(checkpoints, ignore_errors=True)
    history = [h for h in trainer.state.log_history if "loss" in h]
    last = history[-1] if history else {}
    preference = {  # SimPO's and DPO's reward accuracy and margin at the last logged step
        name: round(float(last[key]), 4)
        for name, key in (("reward_accuracy", "rewards/accuracies"), ("reward_margin", "rewards/margins"))
        if key in last
    }
    return {
        "adapter": ("qlora" if peft.load_in_4bit else "lora") if peft else "none",
        "trainable_params": trainable,
        "total_params": total,
        "train_loss": round(float(result.training_loss), 4),
        "final_loss": round(float(last["loss"]), 4) if last else None,
        **preference,
        "steps": int(result.global_step),
        "processes": int(trainer.args.world_size),
        "train_seconds": round(float(result.metrics["train_runtime"]), 2),
        "resumed": resume,
    }


def _tokens(tokenizer, messages: list[dict], generation_prompt: bool = False) -> int:
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=generation_prompt, tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def fit_lengths(rows: list[dict], tokenizer, cfg: OptimizerConfig) -> tuple[list[dict], dict]:
    """Preference rows cut as the SimPO recipes cut them (TRL's former DPOTrainer rule), before TRL sees them, with
    counts of what was cut.

    When the prompt plus the longer answer exceed `max_length`, the prompt is cut to its last `max_prompt_length`
    tokens (`cut_prompt`, SPA's). An answer that still does not fit is cut at `max_length` by TRL itself (counted
    here; the recipes' TRL cut it to `max_length - max_prompt_length` tokens whatever the prompt's length). A row
    whose prompt alone fills `max_length` (possible with `max_prompt_length` None) is dropped and counted. TRL 1.16
    does neither in the open: its CPOTrainer (SimPO) has no `max_prompt_length` and cuts the completions, warning
    only when nothing is left, and its DPOTrainer silently drops the rows whose prompt fills `max_length`.
    """
    counts: Counter = Counter()
    kept = []
    for row in rows:
        prompt = _tokens(tokenizer, row["prompt"], generation_prompt=True)
        answers = [_tokens(tokenizer, row["prompt"] + row[k]) - prompt for k in ("chosen", "rejected")]
        limit = cfg.max_prompt_length
        if limit is not None and prompt > limit and prompt + max(answers) > cfg.max_length:
            user = row["prompt"][-1]["content"]
            template = prompt - len(tokenizer(user, add_special_tokens=False)["input_ids"])
            cut = cut_prompt(tokenizer, user, max(1, limit - template))
            row = {**row, "prompt": row["prompt"][:-1] + [{**row["prompt"][-1], "content": cut}]}
            prompt = _tokens(tokenizer, row["prompt"], generation_prompt=True)
            counts["prompts_cut"] += 1
        if prompt >= cfg.max_length:
            counts["rows_dropped"] += 1
            continue
        counts["completions_cut"] += sum(prompt + a > cfg.max_length for a in answers)
        kept.append(row)
    stats = {k: counts[k] for k in ("prompts_cut", "completions_cut", "rows_dropped")}
    log.info(
        "preference rows: %d of %d prompts cut to max_prompt_length=%s, %d completions cut at max_length=%d, "
        "%d rows dropped (their prompt fills max_length)",
        *(counts["prompts_cut"], len(rows), cfg.max_prompt_length, counts["completions_cut"], cfg.max_length),
        counts["rows_dropped"],
    )
    if not kept:
        raise DataError(f"every preference row's prompt fills optimizer.max_length={cfg.max_length}")
    return kept, stats


def _fit(trainer_class, args, model_path: str, rows: list[dict], out: Path, dtype: str, peft, tokenizer=None, **extra):
    """Build a TRL trainer on `model_path` and `rows` (with a new adapter when `peft` is set), train (resuming if a
    checkpoint exists), save."""
    tokenizer = tokenizer or load_tokenizer(model_path)
    if peft:
        extra["peft_config"] = adapters.lora_config(peft)
    trainer = trainer_class(
        model=load_causal_lm(model_path, dtype, **adapters.load_kwargs(peft)).train(),
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=_callbacks(),
        **extra,
    )
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(_StepBar)
    distributed.check_distributed_type(trainer.accelerator.distributed_type)
    return trainer, _train_and_save(trainer, out, tokenizer, model_path, dtype, peft)


class _StepBar(ProgressCallback):
    """transformers' step bar, with the per-step logs it would print under it sent to synpo.log instead."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero:
            log.info("step %d: %s", state.global_step, logs, extra=FILE_ONLY)


def sft(
    model_path: str,
    rows: list[dict],
    cfg: SFTConfig,
    out: Path,
    *,
    dtype: str = "float32",
    peft: PeftConfig | None = None,
    seed: int = 0,
) -> dict:
    """Fine-tune on conversational prompt/completion rows; the loss covers the completion only."""
    if distributed.spawns():
        return distributed.launch("sft", rows, out, model_path=model_path, cfg=cfg, dtype=dtype, peft=peft, seed=seed)
    from trl import SFTConfig as TRLSFTConfig

    args = TRLSFTConfig(**_common_args(cfg, out, seed), completion_only_loss=True, packing=False)
    return _fit(sft_trainer_class(distributed.on_cuda(distributed.active())), args, model_path, rows, out, dtype, peft)[
        1
    ]


def sft_trainer_class(cuda: bool):
    """TRL's SFTTrainer; on the CPU one whose loss is the model's own cross-entropy.

    TRL's SFT loss goes through its fused LM head (chunked log-probabilities, never the full logits), built for
    Triton devices: without Triton it folds each vocabulary tile with a dozen fp32 torch ops and accumulates the
    head's gradient in fp32. On SmolLM2-135M (bf16 autocast, 2 threads, 4 x 420 tokens) that made a step 1.45x
    slower than the model's own loss, whose values agree to 4 decimals. On the CPU the loss is therefore the
    model's (labels as TRL's collator masks them: prompt and padding -100); TRL's entropy and token-accuracy
    metrics, which come from the fused head, are not logged there."""
    from transformers import Trainer
    from trl import SFTTrainer

    if cuda:
        return SFTTrainer

    class CPUSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            return Trainer.compute_loss(self, model, {**inputs, "use_cache": False}, return_outputs, num_items_in_batch)

    return CPUSFTTrainer


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
    peft: PeftConfig | None = None,
    seed: int = 0,
) -> dict:
    """SimPO: TRL's CPOTrainer with loss_type="simpo" and no behaviour-cloning term (cpo_alpha=0).

    TRL computes -log sigmoid(beta * (avg logp(chosen) - avg logp(rejected)) - gamma): `simpo_gamma`
    is the paper's gamma (TRL divides it by beta inside before multiplying back).
    """
    if distributed.spawns():
        return distributed.launch("simpo", rows, out, model_path=model_path, cfg=cfg, dtype=dtype, peft=peft, seed=seed)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    if cfg.loss != "simpo":
        raise ValueError(f"optimizer.loss={cfg.loss!r}: only 'simpo' is available")
    args = CPOConfig(
        **_common_args(cfg, out, seed), loss_type="simpo", cpo_alpha=0.0, beta=cfg.beta, simpo_gamma=cfg.gamma
    )
    tokenizer = load_tokenizer(model_path)
    rows, lengths = fit_lengths(rows, tokenizer, cfg)
    stats = _fit(CPOTrainer, args, model_path, simpo_rows(tokenizer, rows), out, dtype, peft, tokenizer)[1]
    return {**stats, **lengths}


def dpo(
    model_path: str,
    rows: list[dict],
    cfg: OptimizerConfig,
    out: Path,
    *,
    refinement: RefinementConfig | None = None,
    extrapolation: float | None = None,
    dtype: str = "float32",
    peft: PeftConfig | None = None,
    seed: int = 0,
) -> dict:
    """DPO (TRL's sigmoid loss) from `model_path`, which is also the frozen reference (under `peft`, the model with
    its adapter disabled: the same weights, not a second copy).

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
            peft=peft,
            seed=seed,
        )
    from trl import DPOConfig

    from synpo.noise_aware_dpo import NoiseAwareDPOTrainer

    if cfg.loss != "dpo":
        raise ValueError(f"loss={cfg.loss!r}: this trainer runs 'dpo'")
    tokenizer = load_tokenizer(model_path)
    rows, lengths = fit_lengths(rows, tokenizer, cfg)
    trainer, stats = _fit(
        NoiseAwareDPOTrainer,
        DPOConfig(**_common_args(cfg, out, seed), beta=cfg.beta, loss_type=["sigmoid"]),
        model_path,
        rows,
        out,
        dtype,
        peft,
        tokenizer,
        # Under peft, no reference model: TRL disables the adapter, leaving the base (`model_path`).
        ref_model=None if peft else load_causal_lm(model_path, dtype),
        refinement=refinement or RefinementConfig(alpha=0.0),
        extrapolation=extrapolation,
    )
    stats.update(lengths)
    if refinement:
        stats.update(pairs_seen=trainer.pairs_seen, pairs_smoothed=trainer.pairs_smoothed)
    return stats
