"""Reward models: score (prompt, answer) pairs; the filter thresholds score(chosen) - score(rejected).

Rewards register by name (`reward.name`), like lm-eval's tasks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from synpo.config import RewardConfig
from synpo.models import load_causal_lm, load_tokenizer
from synpo.templates import chat

REWARDS: dict[str, Callable[..., Reward]] = {}


def register_reward(name: str):
    def wrap(cls):
        REWARDS[name] = cls
        return cls

    return wrap


class Reward:
    """A pointwise reward implements `score`; a pairwise one (PairRM, a judge) overrides `gaps`."""

    def score(self, prompts: list[str], answers: list[str]) -> list[float]:
        raise NotImplementedError

    def gaps(self, prompts: list[str], chosen: list[str], rejected: list[str]) -> list[dict]:
        """One {"gap", ...} per triple; the filters keep a pair when gap > reward.threshold."""
        n = len(prompts)
        both = self.score(prompts + prompts, chosen + rejected)
        return [{"gap": c - r, "chosen_score": c, "rejected_score": r} for c, r in zip(both[:n], both[n:], strict=True)]


def make_reward(cfg: RewardConfig, m0_path: str, system_prompt: str | None = None) -> Reward:
    if cfg.name not in REWARDS:
        raise ValueError(f"reward={cfg.name!r} is not available; available rewards: {sorted(REWARDS)}")
    return REWARDS[cfg.name](cfg, m0_path, system_prompt)


JUDGE_TEMPLATE = """Here is a question and an answer to it.

Question: {question}

Answer: {answer}

Is the answer helpful, correct and complete? Reply with Yes or No."""


@register_reward("self_judge")
class SelfJudge(Reward):
    """P(Yes) / (P(Yes) + P(No)) for the judge model's next token after a yes/no question about the answer.

    With `reward.model` unset the judge is M0 itself, the paper's "the model itself" scorer. It needs only
    one forward pass per answer, the cheapest real-model reward on a CPU.
    """

    def __init__(self, cfg: RewardConfig, m0_path: str, system_prompt: str | None = None):
        path = cfg.model or m0_path
        self.cfg = cfg
        self.system_prompt = system_prompt
        self.tokenizer = load_tokenizer(path)
        self.tokenizer.padding_side = "left"
        self.model = load_causal_lm(path, trust_remote_code=cfg.trust_remote_code)
        self.yes = self._token_id("Yes")
        self.no = self._token_id("No")

    def _token_id(self, word: str) -> int:
        ids = self.tokenizer(word, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(f"reward=self_judge: '{word}' is not a single token for this tokenizer")
        return ids[0]

    def _encode(self, prompt: str, answer: str) -> list[int]:
        # The answer is truncated to fit `reward.max_length` so the verdict token always stays in view.
        budget = max(16, self.cfg.max_length - 128)
        answer_ids = self.tokenizer(answer, add_special_tokens=False)["input_ids"][:budget]
        text = JUDGE_TEMPLATE.format(question=prompt, answer=self.tokenizer.decode(answer_ids))
        conv = chat(text, self.system_prompt)
        ids = self.tokenizer.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
        return self.tokenizer(ids, add_special_tokens=False)["input_ids"][-self.cfg.max_length :]

    @torch.inference_mode()
    def score(self, prompts: list[str], answers: list[str]) -> list[float]:
        encoded = [self._encode(p, a) for p, a in zip(prompts, answers, strict=True)]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        scores = [0.0] * len(encoded)
        pad = self.tokenizer.pad_token_id
        for start in tqdm(range(0, len(order), self.cfg.batch_size), desc="score", leave=False):
            batch = order[start : start + self.cfg.batch_size]
            width = max(len(encoded[i]) for i in batch)
            ids = torch.tensor([[pad] * (width - len(encoded[i])) + encoded[i] for i in batch])
            mask = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in batch])
            logits = self.model(input_ids=ids, attention_mask=mask).logits[:, -1, :]
            pair = torch.log_softmax(logits[:, [self.yes, self.no]].float(), dim=-1)
            for j, i in enumerate(batch):
                scores[i] = float(pair[j, 0].exp())
        return scores
