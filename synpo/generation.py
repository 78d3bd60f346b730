"""Text generation behind one interface: chat conversations + sampling settings -> texts.

Backends register by name (`generation.backend`). The `hf` backend batches transformers' `generate`:
prompts are sorted by token length so a batch pads little, padded on the left, decoded with the KV cache
under `inference_mode`, and returned in the caller's order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from synpo.config import GenerationConfig
from synpo.models import load_causal_lm, load_tokenizer

log = logging.getLogger(__name__)

BACKENDS: dict[str, Callable[..., Generator]] = {}


def register_backend(name: str):
    def wrap(cls):
        BACKENDS[name] = cls
        return cls

    return wrap


@dataclass
class Sampling:
    max_new_tokens: int
    temperature: float = 0.7
    top_p: float = 1.0
    n: int = 1
    stop: list[str] = field(default_factory=list)
    seed: int = 0
    # Text the assistant's turn starts with (e.g. "<question>"): part of the prompt, and of each output.
    prefill: str = ""


class Generator:
    def generate(self, conversations: list[list[dict]], sampling: Sampling, desc: str = "generate") -> list[list[str]]:
        """Return `sampling.n` completions for each conversation, in input order."""
        raise NotImplementedError


def make_generator(model_path: str, cfg: GenerationConfig, dtype: str = "float32") -> Generator:
    if cfg.backend not in BACKENDS:
        raise ValueError(f"generation.backend={cfg.backend!r}: available backends are {sorted(BACKENDS)}")
    return BACKENDS[cfg.backend](model_path, cfg, dtype)


def truncate_at_stop(text: str, stop: list[str]) -> str:
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut]


@register_backend("hf")
class HFGenerator(Generator):
    def __init__(self, model_path: str, cfg: GenerationConfig, dtype: str = "float32"):
        self.cfg = cfg
        self.tokenizer = load_tokenizer(model_path)
        self.tokenizer.padding_side = "left"
        self.model = load_causal_lm(model_path, dtype)

    def encode(self, conversations: list[list[dict]], prefill: str = "") -> list[list[int]]:
        """Token ids of each chat with the generation prompt, exactly as the model sees them."""
        texts = [
            self.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) + prefill
            for c in conversations
        ]
        return [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]

    @torch.inference_mode()
    def generate(self, conversations, sampling: Sampling, desc: str = "generate") -> list[list[str]]:
        ids = self.encode(conversations, sampling.prefill)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        results: list[list[str]] = [[] for _ in ids]
        pad = self.tokenizer.pad_token_id
        bar = tqdm(total=len(ids), desc=desc, unit="prompt", leave=False)
        for b, start in enumerate(range(0, len(order), self.cfg.batch_size)):
            batch = order[start : start + self.cfg.batch_size]
            width = max(len(ids[i]) for i in batch)
            input_ids = torch.tensor([[pad] * (width - len(ids[i])) + ids[i] for i in batch])
            mask = torch.tensor([[0] * (width - len(ids[i])) + [1] * len(ids[i]) for i in batch])
            torch.manual_seed(sampling.seed + b)
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                max_new_tokens=sampling.max_new_tokens,
                do_sample=sampling.temperature > 0,
                temperature=sampling.temperature if sampling.temperature > 0 else None,
                top_p=sampling.top_p if sampling.temperature > 0 else None,
                num_return_sequences=sampling.n,
                stop_strings=sampling.stop or None,
                tokenizer=self.tokenizer if sampling.stop else None,
                pad_token_id=pad,
            )
            texts = self.tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
            for j, i in enumerate(batch):
                samples = texts[j * sampling.n : (j + 1) * sampling.n]
                results[i] = [(sampling.prefill + truncate_at_stop(t, sampling.stop)).strip() for t in samples]
            bar.update(len(batch))
        bar.close()
        return results
