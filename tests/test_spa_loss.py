"""SPA's noise-aware DPO on a tiny random model: TRL's loss when nothing is smoothed, the hand-computed smoothed
loss on the marked pairs, and the extrapolated-logit confidence against a hand computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from trl import DPOConfig, DPOTrainer

from synpo.config import RefinementConfig
from synpo.models import load_causal_lm, load_tokenizer
from synpo.noise_aware_dpo import NoiseAwareDPOTrainer, extrapolated_logratios
from synpo.templates import chat
from synpo.training import CHECKPOINTING

PAIRS = [
    ("Name a colour.", "Blue is a calm colour.", "no no no"),
    ("Say hello.", "Hello! How can I help?", "bye"),
    ("Two plus two?", "Four.", "It is five, obviously, because I say so."),
    ("Capital of France?", "Paris.", "London, I think."),
]
BETA = 0.5


def make_trainer(tiny_model, tmp_path, refinement: RefinementConfig, extrapolation: float | None = None):
    torch.manual_seed(1)
    reference = load_causal_lm(str(tiny_model))
    with torch.no_grad():  # a reference unlike the policy, so that the margins are not all zero
        for p in reference.parameters():
            p.add_(0.05 * torch.randn_like(p))
    rows = [
        {
            "prompt": chat(p),
            "chosen": [{"role": "assistant", "content": c}],
            "rejected": [{"role": "assistant", "content": r}],
        }
        for p, c, r in PAIRS
    ]
    args = DPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=len(PAIRS),
        beta=BETA,
        max_length=128,
        report_to="none",
        dataloader_pin_memory=False,
        bf16=False,
        **{CHECKPOINTING: False},
    )
    trainer = NoiseAwareDPOTrainer(
        model=load_causal_lm(str(tiny_model)).train(),
        ref_model=reference,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=load_tokenizer(str(tiny_model)),
        refinement=refinement,
        extrapolation=extrapolation,
    )
    trainer.state.max_steps = 10
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    return trainer, batch


def hand_logratios(trainer, batch) -> torch.Tensor:
    """Summed completion log pi - log pi_ref per sequence, from full logits."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    target = batch["completion_mask"][:, 1:].bool()
    ratios = []
    with torch.no_grad():
        logits = [m(input_ids=ids, attention_mask=mask).logits for m in (trainer.model, trainer.ref_model)]
    for row in range(ids.size(0)):
        total = 0.0
        for t in range(ids.size(1) - 1):
            if target[row, t]:
                token = ids[row, t + 1]
                policy, ref = (torch.log_softmax(x[row, t].double(), -1)[token] for x in logits)
                total += float(policy - ref)
        ratios.append(total)
    return torch.tensor(ratios, dtype=torch.float64)


def test_nothing_marked_is_exactly_trls_dpo_loss(tiny_model, tmp_path):
    for refinement in (RefinementConfig(alpha=0.0), RefinementConfig(alpha=0.1, percentile=0.0, warmup=0.0)):
        trainer, batch = make_trainer(tiny_model, tmp_path, refinement)
        plain = DPOTrainer._compute_loss(trainer, trainer.model, batch, False)
        ours = trainer.compute_loss(trainer.model, batch)
        assert torch.equal(ours, plain)
    assert trainer.pairs_seen == len(PAIRS) and trainer.pairs_smoothed == 0


def test_marked_pairs_get_the_smoothed_loss(tiny_model, tmp_path):
    alpha = 0.3
    # The 100th percentile of the batch itself: every pair but the most confident one is below it.
    trainer, batch = make_trainer(tiny_model, tmp_path, RefinementConfig(alpha=alpha, percentile=100.0, warmup=0.0))
    loss = trainer.compute_loss(trainer.model, batch)
    ratios = hand_logratios(trainer, batch)
    z = ratios[: len(PAIRS)] - ratios[len(PAIRS) :]
    marked = z < z.max()
    x = BETA * z
    smoothed = -(1 - alpha) * F.logsigmoid(x) - alpha * F.logsigmoid(-x)
    expected = torch.where(marked, smoothed, -F.logsigmoid(x)).mean()
    assert trainer.pairs_smoothed == len(PAIRS) - 1
    assert float(loss) == pytest.approx(float(expected), abs=1e-4)
    assert float(loss) != pytest.approx(float(-F.logsigmoid(x).mean()), abs=1e-4)  # the smoothing did something


def test_no_smoothing_during_the_warmup(tiny_model, tmp_path):
    trainer, batch = make_trainer(tiny_model, tmp_path, RefinementConfig(alpha=0.3, percentile=100.0, warmup=0.2))
    trainer.state.global_step = 1  # < 20% of 10 steps
    assert torch.equal(
        trainer.compute_loss(trainer.model, batch), DPOTrainer._compute_loss(trainer, trainer.model, batch, False)
    )
    assert trainer.pairs_smoothed == 0 and len(trainer.recent) == len(PAIRS)  # the window still fills


def test_extrapolated_logratios_match_a_hand_computation():
    torch.manual_seed(0)
    policy, ref = torch.randn(2, 5, 7), torch.randn(2, 5, 7)
    ids = torch.randint(0, 7, (2, 5))
    completion = torch.tensor([[0, 0, 1, 1, 1], [0, 1, 1, 1, 0]])
    lam = 0.25
    expected = []
    for row in range(2):
        total = 0.0
        for t in range(1, 5):
            if completion[row, t]:
                mixed = (1 + lam) * policy[row, t - 1] - lam * ref[row, t - 1]
                token = ids[row, t]
                total += float(torch.log_softmax(mixed, -1)[token] - torch.log_softmax(ref[row, t - 1], -1)[token])
        expected.append(total)
    got = extrapolated_logratios(policy, ref, ids, completion, lam)
    assert got.tolist() == pytest.approx(expected, abs=1e-5)
    # lambda = 0 is the plain log-ratio of policy and reference.
    plain = extrapolated_logratios(policy, ref, ids, completion, 0.0)
    lp = torch.log_softmax(policy[:, :-1], -1).gather(-1, ids[:, 1:, None])[..., 0]
    lr = torch.log_softmax(ref[:, :-1], -1).gather(-1, ids[:, 1:, None])[..., 0]
    assert plain.tolist() == pytest.approx(((lp - lr) * completion[:, 1:]).sum(1).tolist(), abs=1e-5)


def test_the_trainer_marks_by_extrapolated_confidence(tiny_model, tmp_path):
    lam = 0.5
    trainer, batch = make_trainer(
        tiny_model, tmp_path, RefinementConfig(alpha=0.1, percentile=100.0, warmup=0.0), extrapolation=lam
    )
    confidence = trainer._extrapolated_confidence(trainer.model, batch)
    with torch.no_grad():
        policy = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        ref = trainer.ref_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    ratios = extrapolated_logratios(policy, ref, batch["input_ids"], batch["completion_mask"], lam)
    expected = ratios[: len(PAIRS)] - ratios[len(PAIRS) :]
    assert confidence.tolist() == pytest.approx(expected.tolist(), abs=1e-3)
    trainer.compute_loss(trainer.model, batch)
    assert list(trainer.recent) == pytest.approx(confidence.tolist(), abs=1e-5)
