"""The per-iteration data audit, its warnings and config checks, and the judge-free gold log-likelihood (tiny model)."""

from __future__ import annotations

import json
import math

import pytest

from synpo.io import read_jsonl, write_jsonl
from synpo.stages import audit, gold_likelihood


def pair(i: int, chosen: str, rejected: str, gap: float | None, verdict: str) -> dict:
    return {"id": f"p{i}", "prompt": f"q{i}", "chosen": chosen, "rejected": rejected, "gap": gap, "verdict": verdict}


@pytest.fixture
def iteration(tmp_path, tiny_model):
    """One iteration's stage folders: candidate pairs (two kept), the rewrites and M0's answers, M0 = the tiny model."""
    long, short = "a b c d e f g h", "a b"
    folders = {name: tmp_path / name for name in ("pairs", "rewrites", "rejected", "m0")}
    for f in folders.values():
        f.mkdir()
    write_jsonl(folders["pairs"] / "kept.jsonl", [pair(0, long, short, 0.5, "kept"), pair(1, long, short, 0.2, "kept")])
    write_jsonl(folders["pairs"] / "dropped.jsonl", [pair(2, short, short, -0.1, "identical")])
    write_jsonl(folders["rewrites"] / "rewrites.jsonl", [{"answer": short, "rewrite": long}] * 3)
    write_jsonl(folders["rejected"] / "answers.jsonl", [{"answer": short}] * 3)
    (folders["m0"] / "model").symlink_to(tiny_model)
    return tmp_path, folders


def test_audit_counts_lengths_cuts_repetition_identical_pairs_and_the_gap_histogram(iteration):
    out, folders = iteration
    config = {"max_new_tokens": {"answer": 2, "rewrite": 64}, "threshold": 0.0, "ngram": 3, "bins": 4}
    counts = audit.run(out, config, **folders)
    assert counts["chosen_tokens_mean"] > counts["rejected_tokens_mean"] and counts["length_ratio"] > 1.5
    assert counts["chosen_tokens_median"] == counts["chosen_tokens_mean"]
    assert counts["improver_lengthening"] == counts["length_ratio"]
    assert (counts["answers_cut"], counts["m0_answers_cut"], counts["rewrites_cut"]) == (1.0, 1.0, 0.0)
    assert counts["identical_share"] == pytest.approx(1 / 3, abs=1e-4) and counts["chosen_repetition"] == 0.0
    saved = json.loads((out / "audit.json").read_text())
    assert sum(saved["gap_histogram"]["counts"]) == 3 and len(saved["gap_histogram"]["edges"]) == 5
    assert saved["threshold"] == 0.0

    found = audit.warnings(counts, 3, max_length_ratio=1.5, max_truncated=0.2)
    assert any(w.startswith("iteration 3: chosen answers are") and "audit.max_length_ratio=1.5" in w for w in found)
    assert any("of answers are cut" in w and "audit.max_truncated=0.2" in w for w in found)
    assert not any("rewrites" in w for w in found)
    assert audit.warnings(counts, 3, max_length_ratio=100, max_truncated=1.0) == []


@pytest.mark.parametrize("override", ["audit.max_truncated=1.5", "audit.max_length_ratio=0", "audit.gap_bins=0"])
def test_bad_audit_settings_fail_naming_the_key(override):
    from test_config import composed

    from synpo.cli import validate
    from synpo.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"^{override.split('=')[0].replace('.', '[.]')}=.*: expected"):
        validate(composed(override))


def test_gold_likelihood_is_the_mean_token_log_probability_of_the_held_out_gold_answers(tmp_path, tiny_model):
    import torch
    from transformers import AutoModelForCausalLM

    from synpo.models import load_tokenizer

    seeds, model, out = tmp_path / "seeds", tmp_path / "m", tmp_path / "out"
    for f in (seeds, model, out):
        f.mkdir()
    (model / "model").symlink_to(tiny_model)
    rows = [{"id": f"v{i}", "prompt": f"Question {i}?", "gold": "Answer " * (i + 1)} for i in range(5)]
    write_jsonl(seeds / "validation.jsonl", rows)
    config = {"skip": 2, "items": 2, "max_length": 256, "system_prompt": None, "dtype": "float32"}
    counts = gold_likelihood.run(out, config, model=model, seeds=seeds)
    items = read_jsonl(out / "items.jsonl")
    assert [i["id"] for i in items] == ["v2", "v3"] and counts["n"] == 2  # the rows the beta selection skips
    # Each item is minus the causal-LM loss over the answer's tokens (the chat template's end-of-turn included).
    tokenizer, lm = load_tokenizer(str(tiny_model)), AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    for item, row in zip(items, rows[2:4], strict=True):
        ids, start = gold_likelihood._encode(tokenizer, row["prompt"], row["gold"], None, 256)
        labels = torch.tensor([[-100] * start + ids[start:]])
        with torch.inference_mode():
            loss = lm(input_ids=torch.tensor([ids]), labels=labels).loss
        assert item["mean_logp"] == pytest.approx(-float(loss), abs=1e-4) and item["tokens"] == len(ids) - start
    values = [i["mean_logp"] for i in items]
    assert counts["mean"] == pytest.approx(sum(values) / 2, abs=1e-4)
    half = 1.96 * abs(values[0] - values[1]) / math.sqrt(2) / math.sqrt(2)
    assert counts["ci95"] == pytest.approx(half, abs=1e-4)
