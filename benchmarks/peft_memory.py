"""GPU memory of the one-GPU experiments' stages, estimated from their composed configs (no GPU, no hub).

    python benchmarks/peft_memory.py [EXPERIMENT ...] [OVERRIDE ...]
    python benchmarks/peft_memory.py paper_mistral_lora generation.batch_size=8 \\
        ++peft.trainers.sft.per_device_batch_size=1

EXPERIMENTS default to paper_mistral_lora paper_llama3_qlora paper_spa_mistral_lora; OVERRIDES (key=value) apply
to each. A total fits a GPU when it is below its memory (80 GB: 80 GiB, an A100 / H100; 24 GB: 24 GiB, an RTX 4090).

Each trainer's lengths, per-device batch, checkpointing and adapter come from the experiment (`peft.trainers`
overrides applied, as the stages get them); the architectures are the models' published configs. Per trainer:
- weights: every parameter in `model.dtype` (bf16, 2 bytes); under QLoRA the decoder's linear weights in NF4 with
  double quantisation, 4.127 bits each (Dettmers et al. 2023, Sec. 3), the rest (embeddings, head, norms) in bf16;
- adapter: r x (in + out) per targeted linear, 16 bytes each (fp32 weight, gradient and Adam's two moments);
  full fine-tuning for comparison: 16 bytes per parameter (bf16 weight and gradient, fp32 master and moments);
- activations: T tokens per device step (per_device_batch_size x max_length, x2 for a chosen / rejected pair);
  with gradient checkpointing each layer's input (T x hidden x 2 bytes) plus one layer recomputed, whose
  activations are taken as (8 x hidden + 4 x intermediate) values per token in bf16 (an assumption: SDPA attention,
  no sequence-squared term), without checkpointing all layers' (same per-layer figure x layers);
- logits: T x vocabulary x 10 bytes (bf16 logits, fp32 log-softmax and its gradient; an upper bound where TRL
  computes the log-probabilities chunked);
- 1.5 GiB for the CUDA context and the allocator's slack (an assumption).
The configured max lengths are worst cases: batches are padded to their longest row, usually far shorter.
DPO's reference is the same weights with the adapter disabled: no extra weights, and its no-grad forward is smaller
than the training one. Generation (`hf`): the merged bf16 model plus the KV cache of `generation.batch_size`
sequences of (prompt + max new tokens), the longest stage's, with the prompt taken as 512 tokens for answers and
512 + the answer's tokens for rewrites (assumptions).
"""

from __future__ import annotations

import sys

from hydra import compose, initialize_config_dir

from synpo.adapters import with_overrides
from synpo.cli import CONF_DIR
from synpo.methods.recipe import plain

GIB = 2**30
# Published configs: layers, hidden, key/value width (kv heads x head dim), intermediate, vocabulary, parameters.
ARCH = {
    "mistral-7b-base-sft": (32, 4096, 1024, 14336, 32000, 7.24e9),
    "llama3-8b-base-sft": (32, 4096, 1024, 14336, 128256, 8.03e9),
}
CONTEXT = 1.5 * GIB
DEFAULT = ("paper_mistral_lora", "paper_llama3_qlora", "paper_spa_mistral_lora")
NF4_BYTES = 4.127 / 8


def trainer_memory(arch, trainer: dict, peft: dict, pairs: bool) -> dict:
    layers, h, kv, i, vocab, params = arch
    linears = [(h, h), (h, kv), (h, kv), (h, h), (h, i), (h, i), (i, h)]  # q k v o gate up down
    linear_params = layers * sum(a * b for a, b in linears)
    if peft["adapter"] == "none":
        weights, states = 2 * params, 16 * params
    else:
        adapter = layers * sum(peft["r"] * (a + b) for a, b in linears)
        quantised = linear_params * NF4_BYTES + 2 * (params - linear_params)
        weights, states = (quantised if peft["load_in_4bit"] else 2 * params), 16 * adapter
    tokens = trainer["per_device_batch_size"] * trainer["max_length"] * (2 if pairs else 1)
    layer = tokens * (8 * h + 4 * i) * 2
    activations = tokens * h * 2 * layers + layer if trainer["gradient_checkpointing"] else layer * layers
    logits = tokens * vocab * 10
    parts = {"weights": weights, "states": states, "act": activations, "logits": logits}
    return {"tokens": tokens, **parts, "total": sum(parts.values()) + CONTEXT}


def generation_memory(arch, cfg) -> float:
    layers, h, kv, i, vocab, params = arch
    m = cfg.method
    if cfg.method.name == "spa":
        longest = 512 + m.max_new_tokens
    else:
        longest = 512 + m.max_new_tokens.answer + m.max_new_tokens.rewrite
    kv_cache = cfg.generation.batch_size * longest * layers * 2 * kv * 2
    return 2 * params + kv_cache + CONTEXT


def trainers(cfg) -> dict[str, tuple[dict, bool]]:
    m = cfg.method
    if m.name == "spa":
        return {"seed DPO": (plain(m.seed_dpo), True), "DPO": (plain(m.dpo), True)}
    return {
        "generator SFT": (plain(m.generator_sft), False),
        "improver SFT": (plain(m.improver_sft), False),
        "SimPO": (plain(cfg.optimizer), True),
    }


def fits(total: float) -> str:
    return " / ".join("yes" if total < gib * GIB else "no" for gib in (80, 24))


def main() -> None:
    overrides = [a for a in sys.argv[1:] if "=" in a]
    experiments = [a for a in sys.argv[1:] if "=" not in a] or list(DEFAULT)
    print(f"overrides: {' '.join(overrides) or 'none'}\n")
    print(
        "| experiment | stage | tokens / device step | weights | adapter + optimizer | activations | logits "
        "| total GiB | fits 80 / 24 GB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in experiments:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="config", overrides=[f"experiment={name}", *overrides])
        arch, peft = ARCH[cfg.model.name], plain(cfg.peft)
        rows = {}
        for stage, (trainer, pairs) in trainers(cfg).items():
            rows[stage] = trainer_memory(arch, with_overrides(cfg.peft, trainer), peft, pairs)
            if stage in ("SimPO", "DPO"):
                rows[f"{stage}, full fine-tuning (the paper's settings)"] = trainer_memory(
                    arch, trainer, {"adapter": "none"}, pairs
                )
        for stage, r in rows.items():
            cells = [r["tokens"], *(f"{r[k] / GIB:.1f}" for k in ("weights", "states", "act", "logits", "total"))]
            print(f"| {name} | {stage} | " + " | ".join(map(str, cells)) + f" | {fits(r['total'])} |")
        gen = generation_memory(arch, cfg)
        print(
            f"| {name} | generation (hf, batch {cfg.generation.batch_size}) | | | | | | {gen / GIB:.1f} | {fits(gen)} |"
        )


if __name__ == "__main__":
    main()
