"""The TRL wrappers on a tiny real model: SimPO moves the policy toward `chosen`, SFT learns its target."""

from __future__ import annotations

import torch
from conftest import preference_rows

from synpo.config import OptimizerConfig, SFTConfig
from synpo.models import load_causal_lm, load_tokenizer
from synpo.templates import chat
from synpo.training import sft, simpo

PAIRS = [
    ("Name a colour.", "Blue is a calm colour of sky and sea.", "no no no"),
    ("Say hello.", "Hello! How can I help you today?", "bye bye bye"),
]


def mean_logprob(model, tokenizer, prompt: str, answer: str) -> float:
    """Average log-probability of the answer tokens after the chat prompt (what SimPO rewards)."""
    head = tokenizer.apply_chat_template(chat(prompt), add_generation_prompt=True, tokenize=False)
    p_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    a_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p_ids + a_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
    targets = ids[0, 1:]
    token_logp = logp[torch.arange(len(targets)), targets][len(p_ids) - 1 :]
    return float(token_logp.mean())


def margin(path, tokenizer) -> float:
    model = load_causal_lm(str(path))
    return sum(mean_logprob(model, tokenizer, p, c) - mean_logprob(model, tokenizer, p, r) for p, c, r in PAIRS)


def test_simpo_raises_the_chosen_over_rejected_margin(tiny_model, tmp_path):
    tokenizer = load_tokenizer(str(tiny_model))
    rows = preference_rows(PAIRS)
    cfg = OptimizerConfig(
        beta=2.0,
        gamma=1.6,
        learning_rate=5e-3,
        num_epochs=8,
        batch_size=2,
        per_device_batch_size=2,
        warmup_ratio=0.0,
        lr_scheduler="constant",
        max_length=128,
        save_steps=None,
    )
    stats = simpo(str(tiny_model), rows, cfg, tmp_path)
    assert stats["steps"] == 8
    assert (tmp_path / "model" / "model.safetensors").is_file() and not (tmp_path / "checkpoints").exists()
    assert margin(tmp_path / "model", tokenizer) > margin(tiny_model, tokenizer) + 1.0


def test_sft_learns_the_completion(tiny_model, tmp_path, capsys, caplog):
    rows = [{"prompt": chat("Capital of France?"), "completion": [{"role": "assistant", "content": "Paris."}]}] * 4
    cfg = SFTConfig(
        learning_rate=5e-3,
        num_epochs=6,
        batch_size=4,
        per_device_batch_size=2,
        warmup_ratio=0.0,
        lr_scheduler="constant",
        max_length=128,
        save_steps=None,
    )
    with caplog.at_level("INFO", logger="synpo.training"):
        stats = sft(str(tiny_model), rows, cfg, tmp_path)
    assert stats["final_loss"] < stats["train_loss"]
    # The per-step logs go to synpo.log only (synpo/console.py), not printed under the step bar.
    steps = [r for r in caplog.records if r.getMessage().startswith("step ")]
    assert len(steps) == 6 + 1 and all(r.console is False for r in steps)  # a line per step, then the summary
    assert "'loss'" not in capsys.readouterr().out
    tokenizer = load_tokenizer(str(tiny_model))
    before = mean_logprob(load_causal_lm(str(tiny_model)), tokenizer, "Capital of France?", "Paris.")
    after = mean_logprob(load_causal_lm(str(tmp_path / "model")), tokenizer, "Capital of France?", "Paris.")
    assert after > before + 1.0
