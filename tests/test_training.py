"""The TRL wrappers on a tiny real model: SimPO moves the policy toward `chosen`, SFT learns its target."""

from __future__ import annotations

import pytest
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


def test_the_cpu_sft_loss_is_trls_on_the_same_batch_and_covers_the_completion_only(tiny_model, tmp_path):
    """On the CPU the SFT loss is the model's own cross-entropy, not TRL's fused LM head: the same value on the same
    batch, the mean over the tokens TRL's collator labels, which are the completion's (prompt and padding -100)."""
    from datasets import Dataset
    from trl import SFTConfig as TRLSFTConfig

    from synpo.training import sft_trainer_class

    rows = [
        {"prompt": chat("Capital of France?"), "completion": [{"role": "assistant", "content": "Paris."}]},
        {"prompt": chat("Name a long river."), "completion": [{"role": "assistant", "content": "The Nile, 6,650 km."}]},
    ]
    args = TRLSFTConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=2, completion_only_loss=True, report_to="none",
        use_cpu=True, max_length=128,
    )  # fmt: skip
    tokenizer = load_tokenizer(str(tiny_model))

    def trainer(cuda: bool):
        model = load_causal_lm(str(tiny_model))
        return sft_trainer_class(cuda)(
            model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer
        )

    trl_side, cpu_side = trainer(cuda=True), trainer(cuda=False)
    assert type(trl_side).__name__ == "SFTTrainer" and type(cpu_side).__name__ == "CPUSFTTrainer"
    batch = next(iter(cpu_side.get_train_dataloader()))
    assert (batch["labels"] == -100).any() and (batch["labels"] != -100).any()
    with torch.no_grad():
        ours = cpu_side.compute_loss(cpu_side.model, dict(batch))
        theirs = trl_side.compute_loss(trl_side.model, dict(batch))
        logits = cpu_side.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert float(ours) == pytest.approx(float(theirs), abs=1e-5)
    labels = batch["labels"][:, 1:]
    by_hand = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels.flatten(), ignore_index=-100)
    assert float(ours) == pytest.approx(float(by_hand), abs=1e-5)
    for row, labelled in zip(rows, batch["labels"], strict=True):  # the prompt, with its generation prompt, unlabelled
        prompt = len(
            tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True)["input_ids"]
        )
        assert (labelled[:prompt] == -100).all() and (labelled[prompt] != -100)


LONG_PROMPT = "Background: " + " ".join(f"fact{i} is noted." for i in range(80)) + " Question: which fact is last?"


def _lengths_rows():
    return preference_rows(
        [
            ("Say hello.", "Hello!", "Bye."),  # fits
            (LONG_PROMPT, "The last fact is fact79. " * 3, "No idea."),  # prompt + answer too long: the prompt is cut
            (" ".join(["word"] * 40) + "?", "Yes.", "No."),  # a prompt over max_prompt_length that fits: kept whole
            ("Count.", " ".join(str(i) for i in range(200)), "One."),  # an answer over max_length: TRL cuts it
        ]
    )


def test_fit_lengths_cuts_prompts_as_the_simpo_recipes_and_counts_the_rest(tiny_model):
    from synpo.training import fit_lengths

    tokenizer = load_tokenizer(str(tiny_model))
    rows = _lengths_rows()

    def prompt_tokens(row):
        text = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    assert prompt_tokens(rows[1]) > 128 and 48 < prompt_tokens(rows[2]) < 96
    cfg = OptimizerConfig(max_length=96, max_prompt_length=48)
    kept, counts = fit_lengths(rows, tokenizer, cfg)
    assert counts == {"prompts_cut": 1, "completions_cut": 1, "rows_dropped": 0}
    assert [kept[i] for i in (0, 2, 3)] == [rows[i] for i in (0, 2, 3)]
    cut = kept[1]["prompt"][-1]["content"]
    assert prompt_tokens(kept[1]) <= 48 and cut.endswith("Question: which fact is last?") and LONG_PROMPT.endswith(cut)

    # Without max_prompt_length the over-long prompt stays whole: TRL would leave it no answer (CPO) or drop it (DPO).
    kept, counts = fit_lengths(rows, tokenizer, OptimizerConfig(max_length=96))
    assert counts == {"prompts_cut": 0, "completions_cut": 1, "rows_dropped": 1}
    assert kept == [rows[i] for i in (0, 2, 3)]


@pytest.mark.parametrize("trainer", ["simpo", "dpo"])
def test_preference_trainers_cut_prompts_and_report_it(trainer, tiny_model, tmp_path, caplog):
    from synpo import training

    loss = {"simpo": {}, "dpo": {"loss": "dpo", "beta": 0.1}}[trainer]
    cfg = OptimizerConfig(
        **loss, batch_size=4, per_device_batch_size=2, max_length=96, max_prompt_length=48, save_steps=None
    )
    with caplog.at_level("INFO", logger="synpo.training"):
        stats = getattr(training, trainer)(str(tiny_model), _lengths_rows(), cfg, tmp_path)
    assert (stats["prompts_cut"], stats["completions_cut"], stats["rows_dropped"], stats["steps"]) == (1, 1, 0, 1)
    assert "1 of 4 prompts cut to max_prompt_length=48, 1 completions cut at max_length=96" in caplog.text


def test_max_steps_stops_the_trainer_whatever_the_epochs(tiny_model, tmp_path):
    """`max_steps` (the scale rehearsal caps every trainer at 1) wins over `num_epochs`."""
    rows = [{"prompt": chat("Capital of France?"), "completion": [{"role": "assistant", "content": "Paris."}]}] * 8
    cfg = SFTConfig(num_epochs=5, batch_size=2, per_device_batch_size=2, max_length=64, save_steps=None, max_steps=1)
    assert sft(str(tiny_model), rows, cfg, tmp_path)["steps"] == 1
