"""Every generating stage releases its engine when it ends, also when generation fails (`with make_generator(...)`).

The registered `hf` backend is swapped for a subclass that counts `close()` calls, and the real stages run on the
tiny model; the vLLM engine's own shutdown is tested in tests/test_vllm.py."""

from __future__ import annotations

import gc
import weakref

import pytest

from synpo import generation
from synpo.config import GenerationConfig
from synpo.generation import HFGenerator, Sampling, make_generator
from synpo.io import write_json, write_jsonl
from synpo.stages import answer, judge_samples, rewrite, self_instruct, spa_answers, write_prompts
from synpo.templates import chat

SAMPLING = {"max_new_tokens": 4, "temperature": 0.0}
COMMON = {"generation": {"batch_size": 4}, "dtype": "float32", "system_prompt": None}
PROMPTS = [{"id": f"p{i}", "prompt": f"Explain topic number {i} in a few sentences."} for i in range(3)]


class Counting(HFGenerator):
    opened = closed = 0
    fail = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        Counting.opened += 1

    def generate(self, *args, **kwargs):
        if Counting.fail:
            raise RuntimeError("generation failed")
        return super().generate(*args, **kwargs)

    def close(self):
        Counting.closed += 1
        super().close()


@pytest.fixture
def counting(monkeypatch):
    monkeypatch.setitem(generation.BACKENDS, "hf", Counting)
    monkeypatch.setattr(Counting, "opened", 0)
    monkeypatch.setattr(Counting, "closed", 0)
    monkeypatch.setattr(Counting, "fail", False)
    return Counting


def stage_call(name: str, tmp_path, model):
    """The stage `name` on three prompts, as the pipeline calls it."""
    data = tmp_path / "in"
    if name == "answer":
        write_jsonl(data / "prompts.jsonl", PROMPTS)
        config = {**COMMON, "prompts_file": "prompts.jsonl", "sampling": SAMPLING}
        return lambda out: answer.run(out, config, model=model, prompts=data)
    if name == "rewrite":
        write_jsonl(data / "answers.jsonl", [{**p, "answer": "Some answer."} for p in PROMPTS])
        return lambda out: rewrite.run(out, {**COMMON, "sampling": SAMPLING}, improver=model, answers=data)
    if name == "write_prompts":
        write_jsonl(data / "keywords.jsonl", [{"id": f"kw-{i}", "keywords": ["river", "map"]} for i in range(3)])
        config = {**COMMON, "sampling": SAMPLING, "prompt_filter": {"min_words": 1, "max_words": 200}}
        return lambda out: write_prompts.run(out, config, generator=model, keywords=data)
    if name == "spa_answers":
        write_jsonl(data / "prompts.jsonl", PROMPTS)
        config = {**COMMON, "sampling": {**SAMPLING, "temperature": 0.7}, "max_prompt_length": 64}
        return lambda out: spa_answers.run(out, config, model=model, prompts=data)
    if name == "self_instruct":
        write_jsonl(data / "train.jsonl", PROMPTS)
        config = {
            **COMMON,
            "n": 2,
            "iteration": 1,
            "examples": 2,
            "max_rouge_l": 0.7,
            "prompt_filter": {"min_words": 1, "max_words": 200},
            "sampling": {**SAMPLING, "seed": 3},
        }
        return lambda out: self_instruct.run(out, config, model=model, seed=data)
    if name == "judge_samples":
        write_jsonl(data / "answers.jsonl", [{**p, "samples": ["One.", "Two."]} for p in PROMPTS])
        config = {**COMMON, "judging": {"judgments": 1, "max_new_tokens": 4, "temperature": 0.0}, "seed": 0}
        return lambda out: judge_samples.run(out, config, judge=model, samples=data)
    raise AssertionError(name)


STAGES = ["answer", "rewrite", "write_prompts", "spa_answers", "self_instruct", "judge_samples"]


@pytest.mark.parametrize("name", STAGES)
def test_a_generating_stage_closes_its_generator(counting, tiny_model, tmp_path, name):
    model = tmp_path / "m"
    write_json(model / "model.json", {"path": str(tiny_model)})
    run = stage_call(name, tmp_path, model)
    counts = run(tmp_path / "out")
    assert counting.opened == 1 and counting.closed == 1
    assert counts["ended"] + counts["cut_at_max_new_tokens"] > 0  # it generated, and counted after closing
    counting.fail = True
    with pytest.raises(RuntimeError, match="generation failed"):
        run(tmp_path / "failed")
    assert counting.opened == 2 and counting.closed == 2


def test_closing_the_hf_backend_frees_its_model(tiny_model):
    with make_generator(str(tiny_model), GenerationConfig()) as gen:
        assert gen.generate([chat("Hi")], Sampling(max_new_tokens=2, temperature=0.0))
        model = weakref.ref(gen.model)
    gc.collect()
    assert model() is None and not hasattr(gen, "model")
    gen.close()  # idempotent


def test_evaluation_and_the_local_judge_close_what_they_loaded(counting, tiny_model):
    from synpo.config import JudgeConfig
    from synpo.evaluation import Context
    from synpo.judges import make_judge_client

    judge = make_judge_client(JudgeConfig(max_new_tokens=2, temperature=0.0), str(tiny_model))
    assert judge.complete([chat("Hi")])
    judge.close()
    assert counting.opened == 1 and counting.closed == 1
    ctx = Context(str(tiny_model), "m", "float32", GenerationConfig(), None, None, 0)
    ctx.generator()
    ctx.close()
    assert counting.closed == 2 and ctx._models == {}
