"""SPA's direct preference judgment on a tiny model: the implicit-reward labels (through the shared `reward_gap`
stage and `reward=implicit`) match log pi(y|x) - log pi_ref(y|x) computed by hand."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from synpo.config import RewardConfig
from synpo.io import read_jsonl, write_json, write_jsonl
from synpo.models import load_causal_lm, load_tokenizer
from synpo.stages import reward_gap, spa_label
from synpo.templates import chat

SYSTEM = "You are a helpful assistant."
ROWS = [
    {"id": "p1", "prompt": "Name a colour.", "answer_a": "Blue.", "answer_b": "I like turtles and long walks."},
    {"id": "p2", "prompt": "Say hello.", "answer_a": "bye bye bye", "answer_b": "Hello! How can I help?"},
    {"id": "p3", "prompt": "Two plus two?", "answer_a": "Four.", "answer_b": "Five, I think."},
    {"id": "p4", "prompt": "Capital of France?", "answer_a": "Paris.", "answer_b": "Paris."},
]


def answer_logp(model, tokenizer, prompt: str, answer: str) -> float:
    """Summed log-probability of the answer's tokens (end of turn included) after the chat prompt, token by token."""
    head = tokenizer.apply_chat_template(chat(prompt, SYSTEM), add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(
        chat(prompt, SYSTEM) + [{"role": "assistant", "content": answer}], tokenize=False
    )
    assert full.startswith(head)
    ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    start = len(tokenizer(head, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    return sum(float(torch.log_softmax(logits[t - 1], -1)[ids[t]]) for t in range(start, len(ids)))


@pytest.fixture(scope="module")
def models(tiny_model, tmp_path_factory):
    """The tiny model as the policy and a perturbed copy as the reference."""
    folder = tmp_path_factory.mktemp("label")
    torch.manual_seed(3)
    reference = load_causal_lm(str(tiny_model))
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(0.05 * torch.randn_like(p))
    reference.save_pretrained(folder / "reference")
    load_tokenizer(str(tiny_model)).save_pretrained(folder / "reference")
    return str(tiny_model), str(folder / "reference")


def test_implicit_reward_labels_match_hand_computed_logprobs(models, tmp_path):
    policy_path, reference_path = models
    answers, m0 = tmp_path / "answers", tmp_path / "m0"
    write_jsonl(answers / "answers.jsonl", ROWS)
    write_json(m0 / "model.json", {"path": reference_path, "name": "reference as M0"})
    reward = dataclasses.asdict(RewardConfig(name="implicit", model=policy_path, batch_size=3))
    config = {
        "chosen": ["answers.jsonl", "answer_a"],
        "rejected": ["answers.jsonl", "answer_b"],
        "reward": reward,
        "system_prompt": SYSTEM,
        "dtype": "float32",
    }
    reward_gap.run(tmp_path / "gaps", config, chosen=answers, rejected=answers, m0=m0)
    counts = spa_label.run(tmp_path / "pairs", {}, answers=answers, gaps=tmp_path / "gaps")

    policy, reference = load_causal_lm(policy_path), load_causal_lm(reference_path)
    tokenizer = load_tokenizer(policy_path)

    def implicit(prompt: str, answer: str) -> float:
        return answer_logp(policy, tokenizer, prompt, answer) - answer_logp(reference, tokenizer, prompt, answer)

    pairs = {p["id"]: p for p in read_jsonl(tmp_path / "pairs" / "pairs.jsonl")}
    assert set(pairs) == {"p1", "p2", "p3"}  # p4's two answers are the same: a tie, left out
    assert counts["labelled"] == 3 and counts["dropped_ties"] == 1
    for row in ROWS[:3]:
        a, b = implicit(row["prompt"], row["answer_a"]), implicit(row["prompt"], row["answer_b"])
        pair = pairs[row["id"]]
        assert (pair["chosen"], pair["rejected"]) == (
            (row["answer_a"], row["answer_b"]) if a > b else (row["answer_b"], row["answer_a"])
        )
        assert pair["margin"] == pytest.approx(abs(a - b), abs=1e-3)
        assert pair["chosen_score"] == pytest.approx(max(a, b), abs=1e-3)
        assert pair["rejected_score"] == pytest.approx(min(a, b), abs=1e-3)
