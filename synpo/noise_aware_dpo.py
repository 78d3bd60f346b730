"""SPA's self-refinement of noisy self-labels (Kim et al., Sec. 4.2) as a thin subclass of TRL's DPOTrainer.

With z = (log pi(y_w|x) - log pi_ref(y_w|x)) - (log pi(y_l|x) - log pi_ref(y_l|x)), a pair whose label may be
wrong gets label smoothing alpha: -(1 - alpha) log sigmoid(beta z) - alpha log sigmoid(-beta z). Because
log sigmoid(-x) = log sigmoid(x) - x, that is TRL's sigmoid loss plus alpha * beta * z, so TRL computes the loss as
usual and only the correction is added: z is recovered, with its gradient, from the per-token log-probabilities the
policy's and the reference's forwards return (captured by forward hooks). Unmarked pairs get TRL's loss unchanged.

A pair is marked when its confidence is below the `percentile` of the confidences of the last `window` pairs, after
the first `warmup` fraction of the optimizer steps. The confidence is z itself, or with de-coupled noise detection
the same margin computed with the extrapolated logits (1 + lambda) h_policy - lambda h_ref, which exaggerate what
training has changed so far.

The reference is TRL's: the `ref_model` given, or, when the policy is a peft model and none is given, the policy with
its adapter disabled (the base the adapter was put on), so no second copy of the weights is in memory.
"""

from __future__ import annotations

from collections import deque
from contextlib import contextmanager

import torch
from trl import DPOTrainer
from trl.trainer.utils import use_adapter

from synpo.config import RefinementConfig


def sequence_logratios(policy_logps: torch.Tensor, ref_logps: torch.Tensor, shift_mask: torch.Tensor) -> torch.Tensor:
    """Summed completion log-ratio of each sequence from per-token log-probabilities aligned with `shift_mask`."""
    return ((policy_logps - ref_logps) * shift_mask).sum(dim=1)


def pair_margins(logratios: torch.Tensor) -> torch.Tensor:
    """z per pair: TRL stacks the batch as [chosen..., rejected...]."""
    chosen, rejected = logratios.chunk(2, dim=0)
    return chosen - rejected


def token_logps(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """log p(token t+1 | tokens <= t), shape (batch, length - 1)."""
    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    return logps.gather(-1, input_ids[:, 1:, None])[..., 0]


def extrapolated_logratios(
    policy_logits: torch.Tensor,
    ref_logits: torch.Tensor,
    input_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    lam: float,
) -> torch.Tensor:
    """Completion log-ratio of each sequence under the extrapolated model (1 + lam) h_policy - lam h_ref."""
    extrapolated = (1 + lam) * policy_logits.float() - lam * ref_logits.float()
    return sequence_logratios(
        token_logps(extrapolated, input_ids), token_logps(ref_logits, input_ids), completion_mask[:, 1:]
    )


class NoiseAwareDPOTrainer(DPOTrainer):
    """TRL's DPO (sigmoid loss) with SPA's label smoothing of the least confident pairs.

    `extrapolation` is the lambda of de-coupled noise detection (None: the confidence is the DPO margin).
    `pairs_seen` / `pairs_smoothed` count the training pairs and how many of them were smoothed; they and the window
    of recent confidences are not checkpointed, so they restart when training resumes from a checkpoint.
    """

    def __init__(self, *args, refinement: RefinementConfig, extrapolation: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if self.precompute_ref_logps:
            raise ValueError("NoiseAwareDPOTrainer needs the reference's forwards (no precomputed reference logps)")
        self.refinement = refinement
        self.extrapolation = extrapolation
        self.recent: deque[float] = deque(maxlen=refinement.window)
        self.pairs_seen = 0
        self.pairs_smoothed = 0

    @contextmanager
    def _captured_logps(self, model):
        """Per-token log-probabilities of the fused forwards TRL runs, in its order: [policy, reference]. Without a
        `ref_model` both forwards go through the (unwrapped) policy, the second with its adapter disabled."""
        captured: list[torch.Tensor] = []

        def store(module, args, kwargs, output):
            if kwargs.get("fused_lm_head"):
                captured.append(output.log_probs)

        modules = [self.accelerator.unwrap_model(model)] + ([self.ref_model] if self.ref_model is not None else [])
        handles = [m.register_forward_hook(store, with_kwargs=True) for m in modules]
        try:
            yield captured
        finally:
            for handle in handles:
                handle.remove()

    def _reference_logits(self, model, **inputs) -> torch.Tensor:
        if self.ref_model is not None:
            return self.ref_model(**inputs).logits
        with use_adapter(self.accelerator.unwrap_model(model), adapter_name=None):
            return model(**inputs).logits

    @torch.no_grad()
    def _extrapolated_confidence(self, model, inputs) -> torch.Tensor:
        """z under the extrapolated logits; one sequence at a time, so full logits of only one row are in memory."""
        ratios = []
        for row in range(inputs["input_ids"].size(0)):
            n = int(inputs["attention_mask"][row].sum())
            ids = inputs["input_ids"][row : row + 1, :n]
            mask = inputs["attention_mask"][row : row + 1, :n]
            policy = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
            ref = self._reference_logits(model, input_ids=ids, attention_mask=mask, use_cache=False)
            completion = inputs["completion_mask"][row : row + 1, :n]
            ratios.append(extrapolated_logratios(policy, ref, ids, completion, self.extrapolation))
        return pair_margins(torch.cat(ratios))

    def _mark(self, confidence: torch.Tensor) -> torch.Tensor:
        """Low-confidence pairs among the recent ones; none during the warm-up. The window fills from the start."""
        self.recent.extend(confidence.tolist())
        if self.state.global_step < self.refinement.warmup * self.state.max_steps:
            return torch.zeros_like(confidence, dtype=torch.bool)
        threshold = torch.quantile(torch.tensor(list(self.recent)), self.refinement.percentile / 100)
        return confidence < threshold

    def _compute_loss(self, model, inputs, return_outputs):
        if not (self.refinement.alpha and model.training):
            return super()._compute_loss(model, inputs, return_outputs)
        with self._captured_logps(model) as logps:
            result = super()._compute_loss(model, inputs, return_outputs)
        shift_mask = inputs["completion_mask"][:, 1:]
        seq_len = shift_mask.size(1)
        policy_logps, ref_logps = logps
        z = pair_margins(sequence_logratios(policy_logps[:, -seq_len:], ref_logps[:, -seq_len:], shift_mask))
        confidence = z.detach() if self.extrapolation is None else self._extrapolated_confidence(model, inputs)
        marked = self._mark(confidence)
        self.pairs_seen += len(marked)
        self.pairs_smoothed += int(marked.sum())
        self._metrics["train"]["refinement/smoothed_fraction"].append(marked.float().mean().item())
        correction = self.refinement.alpha * self.beta * (z * marked).mean()
        if return_outputs:
            return result[0] + correction, result[1]
        return result + correction
