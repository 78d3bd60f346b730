"""The batched HF backend on a tiny real model: same texts as one-at-a-time, in the caller's order."""

from __future__ import annotations

import pytest
import torch

from synpo.config import GenerationConfig
from synpo.generation import (
    PREFILL_ROWS,
    HFGenerator,
    RowSampler,
    Sampling,
    even_batch_size,
    make_generator,
    prefilled_cache,
    truncate_at_stop,
)
from synpo.templates import chat

PROMPTS = ["Hi", "Name three rivers of Europe and their lengths.", "Why?", "Explain a hash map in detail please."]


@pytest.fixture(scope="module")
def generators(tiny_model):
    batched = make_generator(str(tiny_model), GenerationConfig(batch_size=4))
    single = make_generator(str(tiny_model), GenerationConfig(batch_size=1))
    return batched, single


def test_batched_greedy_generation_equals_one_prompt_at_a_time(generators):
    batched, single = generators
    sampling = Sampling(max_new_tokens=12, temperature=0.0)
    convs = [chat(p, "You are a helpful assistant.") for p in PROMPTS]
    assert batched.generate(convs, sampling) == single.generate(convs, sampling)


def test_a_batch_prefilled_in_chunks_of_different_widths_generates_what_one_prompt_at_a_time_does(tiny_model):
    prompts = [*PROMPTS, "Ok", "List ten prime numbers, then explain why each is prime, one line each.", "No", "?"]
    convs = [chat(p) for p in prompts]
    batched = make_generator(str(tiny_model), GenerationConfig(batch_size=len(prompts)))
    ids = sorted(batched.encode(convs), key=len, reverse=True)
    cache = prefilled_cache(batched.model, ids, batched.tokenizer.pad_token_id)
    # Two chunks of 4 rows, each padded to its own widest prompt, merged left padded to the widest but one token.
    assert cache is not None and cache.get_seq_length() == len(ids[0]) - 1 and len(ids) > PREFILL_ROWS
    single = make_generator(str(tiny_model), GenerationConfig(batch_size=1))
    sampling = Sampling(max_new_tokens=10, temperature=0.0)
    assert batched.generate(convs, sampling) == single.generate(convs, sampling)


def test_a_batch_out_of_memory_is_retried_smaller_keeping_finished_rows(tiny_model, monkeypatch):
    gen = make_generator(str(tiny_model), GenerationConfig(batch_size=4))
    sampling = Sampling(max_new_tokens=6, temperature=0.0)
    convs = [chat(p) for p in PROMPTS]
    expected = gen.generate(convs, sampling)
    real, sizes = gen.model.generate, []

    def generate(input_ids, **kwargs):
        sizes.append(len(input_ids))
        if len(input_ids) > 1:  # the message torch gives when a CUDA allocation fails
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(input_ids=input_ids, **kwargs)

    monkeypatch.setattr(gen.model, "generate", generate)
    assert gen.generate(convs, sampling) == expected
    assert sizes[0] == 4 and sizes[-len(PROMPTS) :] == [1] * len(PROMPTS)


def test_sampling_is_reproducible_for_a_seed_and_returns_n_samples(generators):
    batched, _ = generators
    convs = [chat(p) for p in PROMPTS]
    a = batched.generate(convs, Sampling(max_new_tokens=8, temperature=0.7, n=2, seed=3))
    b = batched.generate(convs, Sampling(max_new_tokens=8, temperature=0.7, n=2, seed=3))
    assert a == b and all(len(samples) == 2 for samples in a)


def test_a_prompts_samples_do_not_depend_on_its_batch(generators):
    batched, single = generators
    convs = [chat(p) for p in PROMPTS]
    sampling = Sampling(max_new_tokens=8, temperature=1.0, n=2, seed=5)
    together = batched.generate(convs, sampling)
    assert together == single.generate(convs, sampling)  # batches of 4 and of 1: each prompt has its own generator
    assert batched.generate(convs[1:2], Sampling(**{**vars(sampling), "seed": 6})) != [together[0]]
    assert any(a != b for a, b in together)  # the n samples of a prompt are drawn independently


def test_the_row_sampler_draws_from_the_tempered_nucleus():
    scores = torch.tensor([[2.0, 1.0, 0.5, -1.0, -3.0]])
    n = 20000
    sampler = RowSampler(Sampling(max_new_tokens=1, temperature=0.5, n=n, seed=0), [0])
    out = sampler(None, scores.repeat(n, 1))
    assert ((out == 0).sum(-1) == 1).all() and torch.isinf(out).sum() == n * 4  # one token left per row
    freq = torch.bincount(out.argmax(-1), minlength=5) / n
    assert torch.allclose(freq, torch.softmax(scores[0] / 0.5, -1), atol=0.01)
    nucleus = RowSampler(Sampling(max_new_tokens=1, temperature=0.5, top_p=0.9, n=n, seed=0), [0])
    freq = torch.bincount(nucleus(None, scores.repeat(n, 1)).argmax(-1), minlength=5) / n
    # softmax(scores / 0.5) = 0.865, 0.117, 0.016, ...: the 0.9 nucleus is the first two tokens, renormalised.
    assert freq[2:].sum() == 0 and abs(freq[0] - 0.865 / (0.865 + 0.117)) < 0.01


def test_prefill_starts_every_output(generators):
    batched, _ = generators
    out = batched.generate([chat("q")], Sampling(max_new_tokens=4, temperature=0.0, prefill="<question>"))
    assert out[0][0].startswith("<question>")


def test_prompts_are_cut_into_as_few_equal_batches_as_the_limit_allows():
    assert [even_batch_size(n, 32) for n in (48, 96, 40, 33, 5, 1)] == [24, 32, 20, 17, 5, 1]


def test_truncate_at_stop_cuts_at_the_first_stop_string():
    assert truncate_at_stop("abc</q>def<x>", ["<x>", "</q>"]) == "abc"
    assert truncate_at_stop("abc", ["</q>"]) == "abc"


def test_generation_dtype_sets_the_generating_weights_and_none_keeps_the_models(tiny_model):
    def weights(cfg: GenerationConfig, dtype: str) -> torch.dtype:
        with make_generator(str(tiny_model), cfg, dtype) as gen:
            return next(gen.model.parameters()).dtype

    assert weights(GenerationConfig(dtype="bfloat16"), "float32") == torch.bfloat16
    assert weights(GenerationConfig(), "bfloat16") == torch.bfloat16  # None: model.dtype, as before


def test_bfloat16_if_native_is_float32_where_bf16_would_be_emulated(tiny_model, monkeypatch):
    from synpo import models

    cfg = GenerationConfig(dtype="bfloat16_if_native")
    for native, expected in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(models, "native_bf16", lambda native=native: native)
        assert models.resolve_dtype("bfloat16_if_native") == str(expected).removeprefix("torch.")
        with make_generator(str(tiny_model), cfg, "float32") as gen:
            assert next(gen.model.parameters()).dtype == expected


def test_unknown_backend_names_the_choices(tiny_model):
    with pytest.raises(ValueError, match=r"generation.backend='nope'.*\['hf', 'vllm'\]"):
        make_generator(str(tiny_model), GenerationConfig(backend="nope"))


def test_hf_backend_prompt_matches_the_chat_template(generators):
    batched, _ = generators
    assert isinstance(batched, HFGenerator)
    ids = batched.encode([chat("Hello")])[0]
    text = batched.tokenizer.decode(ids)
    assert "<|im_start|>user\nHello<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")


def test_termination_counts_answers_that_ended_and_answers_cut_at_max_new_tokens(tiny_model):
    gen = make_generator(str(tiny_model), GenerationConfig(batch_size=4))
    convs = [chat(p) for p in PROMPTS]
    gen.generate(convs, Sampling(max_new_tokens=3, temperature=0.7, n=2))
    counts = gen.termination()
    assert counts["ended"] + counts["cut_at_max_new_tokens"] == 2 * len(PROMPTS)
    # Any first token ends the answer when every token is an end-of-turn token.
    gen = make_generator(str(tiny_model), GenerationConfig(batch_size=4))
    gen.model.generation_config.eos_token_id = list(range(len(gen.tokenizer)))
    gen.generate(convs, Sampling(max_new_tokens=3, temperature=0.0))
    assert gen.termination() == {"ended": 4, "cut_at_max_new_tokens": 0, "termination_rate": 1.0}
