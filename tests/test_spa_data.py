"""SPA's data: the shipped demo seed, the hub loader (message lists -> prompt / chosen / rejected), the prompt
slices, and the inputs that must fail before any training, naming the file and the field."""

from __future__ import annotations

import dataclasses

import pytest

from synpo.config import SPADataConfig
from synpo.errors import DataError, ModelError
from synpo.io import read_jsonl, resolve_path, write_jsonl
from synpo.methods.spa import check_reference_tokenizer
from synpo.models import load_tokenizer
from synpo.stages import spa_prompts, spa_seed

DEMO = SPADataConfig(
    source="jsonl",
    seed_file="pkg://synpo/data/spa_seed_demo/train.jsonl",
    prompt_file="pkg://synpo/data/seed_demo/train.jsonl",
    seed_pairs=None,
)


def config(cfg: SPADataConfig) -> dict:
    return dataclasses.asdict(cfg)


def test_the_demo_seed_is_labelled_and_its_prompts_are_not_reused(tmp_path):
    counts = spa_seed.run(tmp_path / "seed", {"data": config(DEMO)})
    seed = read_jsonl(tmp_path / "seed" / "seed.jsonl", spa_seed.FIELDS)
    assert counts["seed_pairs"] == len(seed) >= 60
    assert all(len(r["chosen"]) > len(r["rejected"]) for r in seed)  # gold answers vs short, worse ones
    first = spa_prompts.run(
        tmp_path / "p1", {"data": config(DEMO), "iteration": 1, "offset": 0, "n": 10}, seed=tmp_path / "seed"
    )
    second = spa_prompts.run(
        tmp_path / "p2", {"data": config(DEMO), "iteration": 2, "offset": 10, "n": 10}, seed=tmp_path / "seed"
    )
    p1, p2 = (read_jsonl(tmp_path / p / "prompts.jsonl") for p in ("p1", "p2"))
    seed_prompts = {r["prompt"] for r in seed}
    assert first["prompts"] == second["prompts"] == 10
    assert not {r["prompt"] for r in p1 + p2} & seed_prompts
    assert not {r["prompt"] for r in p1} & {r["prompt"] for r in p2}
    assert first["pool"] == len(read_jsonl(resolve_path(DEMO.prompt_file))) - len(seed)


def test_a_seed_without_rejected_answers_fails_naming_file_and_field(tmp_path):
    bad = tmp_path / "seed.jsonl"
    write_jsonl(bad, [{"id": "a", "prompt": "Hi?", "chosen": "Hello!"}])
    with pytest.raises(DataError, match=rf"{bad}:1: field 'rejected'"):
        spa_seed.run(tmp_path / "out", {"data": config(dataclasses.replace(DEMO, seed_file=str(bad)))})


def test_an_empty_prompt_pool_fails_naming_file_and_field(tmp_path):
    spa_seed.run(tmp_path / "seed", {"data": config(DEMO)})
    where = r"seed_demo/train.jsonl \(method.data.prompt_file\): no prompt left for iteration 3 \(field 'prompt'\)"
    with pytest.raises(DataError, match=where):
        spa_prompts.run(
            tmp_path / "p", {"data": config(DEMO), "iteration": 3, "offset": 10_000, "n": 8}, seed=tmp_path / "seed"
        )


def hub_rows(n: int, drop: str | None = None) -> list[dict]:
    rows = []
    for i in range(n):
        prompt = f"Question {i}?"
        row = {
            "source": "test",
            "prompt": prompt,
            "chosen": [{"role": "user", "content": prompt}, {"role": "assistant", "content": f"Good answer {i}."}],
            "rejected": [{"role": "user", "content": prompt}, {"role": "assistant", "content": f"Bad answer {i}."}],
        }
        rows.append({k: v for k, v in row.items() if k != drop})
    return rows


def fake_hub(monkeypatch, rows: list[dict]) -> None:
    import datasets

    def load_dataset(hub_id, split):
        assert (hub_id, split) == ("argilla/ultrafeedback-binarized-preferences-cleaned", "train")
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)


def test_hub_seed_takes_the_first_pairs_after_the_shuffle_and_the_pool_the_rest(monkeypatch, tmp_path):
    import datasets

    fake_hub(monkeypatch, hub_rows(20))
    cfg = SPADataConfig(seed_pairs=5)
    spa_seed.run(tmp_path / "seed", {"data": config(cfg)})
    seed = read_jsonl(tmp_path / "seed" / "seed.jsonl", spa_seed.FIELDS)
    order = datasets.Dataset.from_list(hub_rows(20)).shuffle(seed=42)["prompt"]
    assert [r["prompt"] for r in seed] == order[:5]
    for r in seed:
        i = r["prompt"].split()[1].rstrip("?")
        assert (r["chosen"], r["rejected"]) == (f"Good answer {i}.", f"Bad answer {i}.")
    spa_prompts.run(tmp_path / "p", {"data": config(cfg), "iteration": 1, "offset": 3, "n": 4}, seed=tmp_path / "seed")
    assert [r["prompt"] for r in read_jsonl(tmp_path / "p" / "prompts.jsonl")] == order[8:12]


def test_hub_seed_without_chosen_fails_naming_the_set_and_field(monkeypatch, tmp_path):
    fake_hub(monkeypatch, hub_rows(4, drop="chosen"))
    with pytest.raises(DataError, match=r"argilla/ultrafeedback-binarized-preferences-cleaned .*'chosen'"):
        spa_seed.run(tmp_path / "seed", {"data": config(SPADataConfig(seed_pairs=2))})


def test_a_reference_with_another_tokenizer_fails(tiny_model, tmp_path):
    other = tmp_path / "other"
    tokenizer = load_tokenizer(str(tiny_model))
    tokenizer.add_tokens(["<not-in-the-policy-vocabulary>"])
    tokenizer.save_pretrained(other)
    (other / "config.json").write_text((tiny_model / "config.json").read_text())
    check_reference_tokenizer(str(tiny_model), str(tiny_model))
    with pytest.raises(ModelError, match=rf"reward.reference='{other}'.*tokenizer differs"):
        check_reference_tokenizer(str(other), str(tiny_model))
