"""Table 6's prompt sources: UltraFeedback-style pools, Self-Instruct-style generation and mixes, as stages and as
`method.prompt_source` of SynPO (end to end on a tiny random model)."""

from __future__ import annotations

import json

import pytest

from synpo.errors import DataError
from synpo.io import read_jsonl, write_json, write_jsonl
from synpo.stages import mix_prompts, prompt_pool, self_instruct
from synpo.templates import parse_self_instruct, self_instruct_prompt


def seed_dir(tmp_path, train: list[str], validation: list[str] = ()):
    seed = tmp_path / "seed"
    write_jsonl(seed / "train.jsonl", [{"id": f"t{i}", "prompt": p, "gold": "g"} for i, p in enumerate(train)])
    rows = [{"id": f"v{i}", "prompt": p, "gold": "g"} for i, p in enumerate(validation)]
    write_jsonl(seed / "validation.jsonl", rows)
    return seed


def test_the_pool_leaves_out_seed_prompts_and_repeats_and_gives_each_iteration_the_next_slice(tmp_path):
    pool = ["p0", "seed a", "p1", "p1", "val b", "p2", "p3", "p4"]
    write_jsonl(tmp_path / "pool.jsonl", [{"id": str(i), "prompt": p} for i, p in enumerate(pool)])
    seed = seed_dir(tmp_path, ["seed a"], ["val b"])
    config = {"pool": {"source": "jsonl", "file": str(tmp_path / "pool.jsonl")}, "n": 2}
    taken = []
    for t in (1, 2, 3):
        counts = prompt_pool.run(tmp_path / f"it{t}", {**config, "iteration": t}, seed=seed)
        taken.append([r["prompt"] for r in read_jsonl(tmp_path / f"it{t}" / "prompts.jsonl")])
        assert counts["pool"] == 5
    assert taken == [["p0", "p1"], ["p2", "p3"], ["p4"]]
    with pytest.raises(DataError, match=r"pool.jsonl \(method.prompt_pool.file\): no prompt left for iteration 4"):
        prompt_pool.run(tmp_path / "it4", {**config, "iteration": 4}, seed=seed)


def test_self_instruct_requests_number_the_examples_and_the_answer_is_cut_at_the_next_task():
    request, prefill = self_instruct_prompt(["Name a  colour.", "Add 2 and 3."])
    assert request == "Come up with a series of tasks:\n\nTask 1: Name a colour.\nTask 2: Add 2 and 3."
    assert prefill == "Task 3:"
    assert parse_self_instruct("Task 3: Write a poem about rain.\nTask 4: more", prefill) == (
        "Write a poem about rain.",
        "ok",
    )
    assert parse_self_instruct("Task 3:   ", prefill) == (None, "empty_task")


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("the cat sat on the mat", "the cat sat on the mat", 1.0),
        ("the cat sat", "a dog ran", 0.0),
        # LCS "the cat the mat" = 4 of 6 and 5 words: F1 = 2 * 4 / 11.
        ("the cat sat on the mat", "The cat ate the mat", 8 / 11),
    ],
)
def test_rouge_l_is_the_f1_of_the_longest_common_word_subsequence(a, b, expected):
    assert self_instruct.rouge_l(a, b) == pytest.approx(expected)


def test_self_instruct_on_a_model_keeps_only_novel_well_formed_tasks(tiny_model, tmp_path):
    questions = [f"Explain topic number {i} in a few sentences for a student." for i in range(6)]
    seed = seed_dir(tmp_path, questions)
    model = tmp_path / "m0"
    write_json(model / "model.json", {"path": str(tiny_model)})
    config = {
        "n": 5,
        "iteration": 1,
        "examples": 3,
        "max_rouge_l": 0.7,
        "prompt_filter": {"min_words": 1, "max_words": 200},
        "generation": {"batch_size": 8},
        "sampling": {"max_new_tokens": 12, "temperature": 1.0, "top_p": 1.0, "seed": 3},
        "system_prompt": None,
        "dtype": "float32",
    }
    counts = self_instruct.run(tmp_path / "out", config, model=model, seed=seed)
    kept = read_jsonl(tmp_path / "out" / "prompts.jsonl")
    dropped = read_jsonl(tmp_path / "out" / "dropped.jsonl")
    assert counts["generated"] == 5 and len(kept) + len(dropped) == 5 and counts["kept"] == len(kept)
    for row in kept:
        assert max(self_instruct.rouge_l(row["prompt"], q) for q in questions) <= 0.7
    with pytest.raises(DataError, match="fewer than method.self_instruct.examples=9"):
        self_instruct.run(tmp_path / "out2", {**config, "examples": 9}, model=model, seed=seed)


def test_a_mix_takes_equal_shares_of_each_source_in_a_seeded_order(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_jsonl(a / "prompts.jsonl", [{"id": f"a{i}", "prompt": f"A {i}"} for i in range(5)])
    write_jsonl(b / "train.jsonl", [{"id": f"b{i}", "prompt": f"B {i}", "gold": "g"} for i in range(5)])
    config = {"parts": {"gen": ["prompts.jsonl", None], "seed": ["train.jsonl", 1]}, "n": 5, "seed": 1}
    counts = mix_prompts.run(tmp_path / "out", config, gen=a, seed=b)
    rows = read_jsonl(tmp_path / "out" / "prompts.jsonl")
    # 3 + 2 wanted; the seed part is cut at its limit of 1 row.
    assert counts == {"prompts": 4, "from_gen": 3, "from_seed": 1}
    assert sorted(r["id"] for r in rows) == ["a0", "a1", "a2", "b0"]
    assert {r["id"]: r["source"] for r in rows}["b0"] == "seed"
    mix_prompts.run(tmp_path / "again", config, gen=a, seed=b)
    assert read_jsonl(tmp_path / "again" / "prompts.jsonl") == rows


def test_synpo_on_a_mix_of_generator_and_pool_prompts_answers_the_mixed_prompts(tiny_model, tmp_path):
    from conftest import run_synpo

    pool = tmp_path / "pool.jsonl"
    write_jsonl(pool, [{"id": f"u{i}", "prompt": f"Human question number {i}, please answer?"} for i in range(4)])
    result = run_synpo(
        "model.source=hub",
        f"model.path={tiny_model}",
        "model.name=tiny",
        "logger=none",
        "evaluation=none",
        "method.iterations=1",
        "method.prompt_source=mix",
        "method.mix=[generator,ultrafeedback]",
        "method.prompt_pool.source=jsonl",
        f"method.prompt_pool.file={pool}",
        "method.prompts_per_iteration=4",
        "method.generator_seed_items=4",
        "method.improver_seed_items=4",
        "method.max_new_tokens.question=16",
        "method.max_new_tokens.answer=8",
        "method.max_new_tokens.rewrite=8",
        "method.generator_sft.max_length=768",
        "method.improver_sft.max_length=768",
        "method.prompt_filter.min_words=1",
        "optimizer.batch_size=2",
        "optimizer.per_device_batch_size=2",
        "optimizer.max_length=128",
        "reward.max_length=128",
        "reward.threshold=-1.0",
        cwd=tmp_path,
        home=tmp_path / "home",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs").glob("*/*")
    labels = [s["label"] for s in json.loads((run_dir / "summary.json").read_text())["stages"]]
    assert labels[:7] == [
        "seed_set",
        "m0",
        "corpus",
        "generator",
        "iter1/keywords",
        "iter1/prompts",
        "iter1/ultrafeedback_prompts",
    ]
    assert labels[7] == "iter1/mixed_prompts"
    mixed = read_jsonl(run_dir / "stages" / "iter1/mixed_prompts/prompts.jsonl")
    assert sum(r["source"] == "ultrafeedback" for r in mixed) == 2
    answered = read_jsonl(run_dir / "stages" / "iter1/policy_answers/answers.jsonl")
    assert [r["prompt"] for r in answered] == [r["prompt"] for r in mixed]


def test_the_demo_pool_serves_two_demo_iterations_and_shares_no_prompt_with_seed_or_evaluation():
    from synpo.io import resolve_path

    pool = [r["prompt"] for r in read_jsonl(resolve_path("pkg://synpo/data/prompts_demo/prompts.jsonl"), ("prompt",))]
    seed = {
        r["prompt"]
        for s in ("train", "validation")
        for r in read_jsonl(resolve_path(f"pkg://synpo/data/seed_demo/{s}.jsonl"))
    }
    suites = resolve_path("pkg://synpo.evaluation/suites")
    evaluation = "".join(p.read_text() for p in suites.rglob("*.json*"))
    assert len(set(pool)) == len(pool) >= 80  # cpu_demo: 2 iterations x 40 prompts
    assert not [p for p in pool if p in seed or p in evaluation]
