"""A judge-free evaluation: the mean per-token log-likelihood of held-out seed gold answers under a model.

It says how close a model has come to the answers the improver learns toward, needs no judge, and moves with a 135M
model. The items are validation rows the per-iteration beta selection does not use (those after its first
`selection_items`), so a chosen model is not scored on what it was chosen on. Each answer's mean token log-probability
after its chat prompt (tokenised as TRL's trainers do, the template's end-of-turn included) is one item; the metric is
their mean with a normal 95% interval, and `items.jsonl` keeps the items for paired comparisons between models.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import torch

from synpo.inference import answer_logps, prepack_linears, right_padded
from synpo.io import read_jsonl, write_jsonl
from synpo.models import load_causal_lm, load_tokenizer, model_from_artifact
from synpo.templates import chat

BATCH = 4


def interval(values: list[float]) -> float:
    """Half-width of the normal 95% interval of the mean."""
    return 1.96 * statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")


def _encode(tokenizer, prompt: str, gold: str, system_prompt: str | None, max_length: int) -> tuple[list[int], int]:
    from trl.data_utils import maybe_apply_chat_template

    texts = maybe_apply_chat_template(
        {"prompt": chat(prompt, system_prompt), "completion": [{"role": "assistant", "content": gold}]}, tokenizer
    )
    prompt_ids = tokenizer(texts["prompt"], add_special_tokens=False)["input_ids"][-(max_length // 2) :]
    answer_ids = tokenizer(texts["completion"], add_special_tokens=False)["input_ids"]
    return (prompt_ids + answer_ids)[:max_length], len(prompt_ids)


@torch.inference_mode()
def mean_token_logps(model_path: str, rows: list[dict], system_prompt, max_length: int, dtype: str) -> list[dict]:
    tokenizer, model = load_tokenizer(model_path), load_causal_lm(model_path, dtype).eval()
    prepack_linears(model, BATCH)
    encoded = [_encode(tokenizer, r["prompt"], r["gold"], system_prompt, max_length) for r in rows]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))  # batches of similar lengths pad less
    out: list[dict] = [{}] * len(rows)
    for start in range(0, len(order), BATCH):
        batch = order[start : start + BATCH]
        ids, mask = right_padded([encoded[i][0] for i in batch], tokenizer.pad_token_id)
        sums, counts = answer_logps(model, ids, mask, [encoded[i][1] for i in batch])
        for i, s, c in zip(batch, sums, counts, strict=True):
            out[i] = {"id": rows[i]["id"], "mean_logp": float(s / c), "tokens": int(c)}
    return out


def run(out: Path, config: dict, model: Path, seeds: Path) -> dict:
    rows = read_jsonl(seeds / "validation.jsonl", ("id", "prompt", "gold"))[config["skip"] :][: config["items"]]
    items = mean_token_logps(
        model_from_artifact(model), rows, config["system_prompt"], config["max_length"], config["dtype"]
    )
    write_jsonl(out / "items.jsonl", items)
    values = [i["mean_logp"] for i in items]
    return {
        "mean": round(statistics.fmean(values), 4) if values else None,
        "ci95": round(interval(values), 4) if values else None,
        "n": len(values),
        "tokens": sum(i["tokens"] for i in items),
    }
