"""Data-parallel generation: shards in their own processes, merged in the original order, seeded by position."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from synpo.config import GenerationConfig
from synpo.generation import HFGenerator, Sampling, ShardedGenerator, make_generator, shard_bounds
from synpo.templates import chat

PROMPTS = ["Hi", "Name three rivers.", "Why?", "Explain a hash map.", "Say yes.", "Count to five please."]


def test_shards_cover_every_prompt_once_in_order():
    assert shard_bounds(5, 2) == [(0, 3), (3, 5)]
    assert shard_bounds(2, 4) == [(0, 1), (1, 2), (2, 2), (2, 2)]
    for n in range(12):
        for k in range(1, 5):
            bounds = shard_bounds(n, k)
            assert [i for a, b in bounds for i in range(a, b)] == list(range(n))


@pytest.fixture(scope="module")
def backends(tiny_model):
    # Each of the two shard processes gets one of the two cores' threads; the unsharded reference uses one
    # thread too, so both sum floats in the same order (the tiny random model's samples flip on 1e-7 changes).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    sharded = make_generator(str(tiny_model), GenerationConfig(batch_size=2, data_parallel_size=2))
    assert isinstance(sharded, ShardedGenerator)
    yield sharded, HFGenerator(str(tiny_model), GenerationConfig(batch_size=2))
    torch.set_num_threads(threads)


def test_sharded_greedy_generation_equals_unsharded(backends):
    sharded, single = backends
    convs = [chat(p) for p in PROMPTS]
    sampling = Sampling(max_new_tokens=8, temperature=0.0)
    assert sharded.generate(convs, sampling) == single.generate(convs, sampling)


def test_sharded_sampling_is_merged_in_order_and_seeded_by_position(backends):
    sharded, single = backends
    convs = [chat(p) for p in PROMPTS]
    sampling = Sampling(max_new_tokens=8, temperature=0.9, n=2, seed=5)
    out = sharded.generate(convs, sampling)
    # Shard k is prompts [start, end) sampled with seed + start, wherever it ran.
    expected = single.generate(convs[:3], sampling) + single.generate(
        convs[3:], dataclasses.replace(sampling, seed=sampling.seed + 3)
    )
    # The single backend is itself reproducible for a seed (test_generation.py), so this pins the sharded output.
    assert out == expected and all(len(s) == 2 for s in out)
