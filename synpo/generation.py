"""Text generation behind one interface: chat conversations + sampling settings -> texts.

Backends register by name (`generation.backend`). Both build prompts with `chat_prompt_ids`, so they see the
same token ids. The `hf` backend batches transformers' `generate`: prompts are sorted by token length, padded
on the left, prefilled a few rows at a time (each chunk padded only to its own widest prompt) into one KV cache,
decoded as a batch under `inference_mode` (sampled by `RowSampler`), and returned in the caller's order; on CPU
its linear layers run through oneDNN with prepacked weights (`synpo.inference`). The `vllm` backend hands the
same token ids to a `vllm.LLM` engine (continuous batching, paged KV cache); vLLM is imported only when selected,
and a script that builds it needs an `if __name__ == "__main__":` guard, as the engine runs in a spawned subprocess.

A generator holds its engine until `close()`, and every stage uses it as a context manager
(`with stage_generator(...) as gen:`), so a generating stage ends with its memory returned: on one GPU the next
stage trains on the same device. For `hf`, closing drops the model and empties PyTorch's CUDA cache. For `vllm`,
whose V1 engine core runs in a child process that keeps the weights and the KV cache (`gpu_memory_utilization`
of the device) and which deleting the `LLM` does not reliably stop, closing shuts the engine-core client down
explicitly, which terminates and joins that process. This was chosen over generating in a spawned child of our
own (as the shards do): the engine already lives in a child, so stopping it returns all of its memory without a
second process, its start-up (importing vLLM and torch again) or shipping prompts and outputs across; what stays
in the synpo process is the frontend (tokenizer, a CUDA context when CUDA was used here, which training needs
anyway). The cost is the shutdown itself, a few seconds (SIGTERM, up to 5 s grace, then SIGKILL), and an engine
start per stage, as before.

With `generation.data_parallel_size` > 1, any backend is wrapped by `ShardedGenerator`: the prompts are cut into
contiguous shards, each generated in its own spawned process by its own engine (on its own
`tensor_parallel_size` GPUs), and the results concatenated in the original order. A shard starting at prompt
`start` samples with seed + start, so both backends' per-prompt seeds (seed + index) are the same as without
sharding.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import math
import multiprocessing
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate.utils import find_executable_batch_size
from tqdm.auto import tqdm

from synpo.config import GenerationConfig
from synpo.inference import BufferedLayer, fold_gqa_decode, left_padded, prepack_linears
from synpo.models import cache_kwarg, load_causal_lm, load_tokenizer, resolve_dtype
from synpo.registry import Registry

log = logging.getLogger(__name__)

BACKENDS = Registry()
register_backend = BACKENDS.register


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
    # Completions so far that ended on their own (end-of-turn token or a stop string), and that were cut at
    # `max_new_tokens`: a model that never learnt to stop shows here first.
    ended: int = 0
    cut: int = 0

    def termination(self) -> dict:
        """The stage counts of the termination rate."""
        total = self.ended + self.cut
        return {
            "ended": self.ended,
            "cut_at_max_new_tokens": self.cut,
            "termination_rate": round(self.ended / total, 4) if total else None,
        }

    def generate(self, conversations: list[list[dict]], sampling: Sampling, desc: str = "generate") -> list[list[str]]:
        """Return `sampling.n` completions for each conversation, in input order."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the engine now, not whenever the last reference goes: the next stage (training on the same
        GPU) needs the memory. Drops the weights this generator holds (the hf backend's `model`) and returns the
        freed CUDA blocks to the device. Idempotent; the generator cannot generate afterwards."""
        vars(self).pop("model", None)
        release_memory()

    def __enter__(self) -> Generator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def release_memory() -> None:
    """Collect what was just dropped and hand PyTorch's cached CUDA blocks back to the driver."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def make_generator(model_path: str, cfg: GenerationConfig, dtype: str = "float32") -> Generator:
    """The backend `cfg` names, its weights in `generation.dtype`, else in `dtype` (the model's)."""
    dtype = cfg.dtype or dtype
    if cfg.backend not in BACKENDS:
        raise ValueError(f"generation.backend={cfg.backend!r}: available backends are {sorted(BACKENDS)}")
    if cfg.data_parallel_size > 1:
        return ShardedGenerator(model_path, cfg, dtype)
    return BACKENDS[cfg.backend](model_path, cfg, dtype)


def stage_generator(model_path: str, config: dict) -> Generator:
    """The generator a generating stage's config asks for: its `generation` settings and `dtype`."""
    return make_generator(model_path, GenerationConfig(**config["generation"]), config["dtype"])


def shard_bounds(n: int, shards: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) ranges covering n prompts, sizes differing by at most one."""
    size, extra = divmod(n, shards)
    bounds, start = [], 0
    for k in range(shards):
        end = start + size + (k < extra)
        bounds.append((start, end))
        start = end
    return bounds


def shard_devices(shard: int, per_shard: int, shards: int) -> str | None:
    """CUDA_VISIBLE_DEVICES of a shard: its own `per_shard` GPUs, or None when there are not enough GPUs."""
    if not torch.cuda.is_available():
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
    if len(ids) < per_shard * shards:
        raise ValueError(
            f"generation.data_parallel_size={shards} x tensor_parallel_size={per_shard} needs "
            f"{per_shard * shards} GPUs; {len(ids)} are visible"
        )
    return ",".join(ids[shard * per_shard : (shard + 1) * per_shard])


def _generate_shard(model_path, cfg: dict, dtype, conversations, sampling: dict, devices, threads, out, desc):
    """One shard, in its own process: build the backend on this shard's devices, generate, write JSON."""
    if devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices
    if threads:
        torch.set_num_threads(threads)
    # Closed before the process exits, so a vllm shard's engine-core process is shut down, not orphaned.
    with BACKENDS[cfg["backend"]](model_path, GenerationConfig(**cfg), dtype) as generator:
        outputs = generator.generate(conversations, Sampling(**sampling), desc)
    Path(out).write_text(json.dumps({"outputs": outputs, "ended": generator.ended, "cut": generator.cut}))


class ShardedGenerator(Generator):
    """Data parallel generation: one process and engine per shard of the prompts, merged in the original order."""

    def __init__(self, model_path: str, cfg: GenerationConfig, dtype: str = "float32"):
        self.model_path, self.dtype = model_path, dtype
        self.shards = cfg.data_parallel_size
        self.cfg = {**dataclasses.asdict(cfg), "data_parallel_size": 1}

    def generate(self, conversations, sampling: Sampling, desc: str = "generate") -> list[list[str]]:
        bounds = shard_bounds(len(conversations), self.shards)
        # On CPU the shards share the cores (one thread each on a 2-core machine with 2 shards).
        threads = None if torch.cuda.is_available() else max(1, (os.cpu_count() or 1) // self.shards)
        ctx = multiprocessing.get_context("spawn")
        with tempfile.TemporaryDirectory(prefix="synpo-shards-") as tmp:
            procs = []
            for k, (start, end) in enumerate(bounds):
                if start == end:
                    continue
                shard_sampling = dataclasses.asdict(dataclasses.replace(sampling, seed=sampling.seed + start))
                devices = shard_devices(k, self.cfg["tensor_parallel_size"], self.shards)
                out = Path(tmp) / f"shard{k}.json"
                args = (self.model_path, self.cfg, self.dtype, conversations[start:end], shard_sampling)
                proc = ctx.Process(target=_generate_shard, args=(*args, devices, threads, out, f"{desc} [{k}]"))
                proc.start()
                procs.append((k, proc, out))
            log.info("%s: %d prompts in %d shards", desc, len(conversations), len(procs))
            results: list[list[str]] = []
            try:
                for k, proc, out in procs:
                    proc.join()
                    if proc.exitcode:
                        raise RuntimeError(f"{desc}: generation shard {k} failed (exit code {proc.exitcode})")
                    shard = json.loads(out.read_text())
                    results.extend(shard["outputs"])
                    self.ended += shard["ended"]
                    self.cut += shard["cut"]
            finally:
                # A failed shard (or an interrupt) stops the others: no engine outlives the call.
                for _, proc, _ in procs:
                    if proc.is_alive():
                        proc.terminate()
                    proc.join()
        return results


def even_batch_size(n: int, limit: int) -> int:
    """The batch size that cuts n prompts into as few batches of at most `limit` as possible, of equal sizes: a
    decode step costs nearly as much for a few rows as for many (it reads every weight), so 48 prompts at a limit
    of 32 run as 24 + 24 (169 tokens/s measured) rather than 32 + 16 (152)."""
    return math.ceil(n / math.ceil(n / limit)) if n else limit


def chat_prompt_ids(tokenizer, conversations: list[list[dict]], prefill: str = "") -> list[list[int]]:
    """Token ids of each chat with the generation prompt and the prefill, exactly as the model sees them."""
    texts = [
        tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) + prefill for c in conversations
    ]
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def finish(text: str, sampling: Sampling) -> str:
    """A completion as every backend returns it: prefill included, cut at the first stop string."""
    return (sampling.prefill + truncate_at_stop(text, sampling.stop)).strip()


def truncate_at_stop(text: str, stop: list[str]) -> str:
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut]


PREFILL_ROWS = 4


def prefilled_cache(
    model, rows: list[list[int]], pad: int, repeats: int = 1, chunk: int = PREFILL_ROWS, headroom: int = 0
):
    """The KV cache of each row's prompt but its last token, left padded to the batch's widest, computed `chunk`
    rows at a time (the rows come sorted by length), so the prompt's prefill pays for little padding while the
    decode still runs the whole batch. `generate` then feeds the last prompt token and continues from this cache,
    with the positions it derives from the attention mask, which are the ones used here; each row's cache is
    repeated `repeats` times, as generate repeats its rows for `num_return_sequences`. Its layers are written in
    place (`BufferedLayer`) with room for `headroom` more positions (the new tokens). None (generate prefills the
    padded batch itself) for models whose cache layers are not all plain full attention (sliding windows)."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    width = max(len(r) for r in rows) - 1
    layer_types = {type(layer) for layer in DynamicCache(config=model.config).layers}
    if min(len(r) for r in rows) < 2 or layer_types != {DynamicLayer}:
        return None
    parts = []
    for start in range(0, len(rows), chunk):
        ids, mask = left_padded([r[:-1] for r in rows[start : start + chunk]], pad)
        cache = DynamicCache(config=model.config)
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
        model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1, **cache_kwarg(model, cache))
        parts.append([(pad_left(layer.keys, width), pad_left(layer.values, width)) for layer in cache.layers])
    merged = DynamicCache(config=model.config)
    merged.layers = [BufferedLayer(headroom) for _ in merged.layers]
    for layer_idx, layer in enumerate(zip(*parts, strict=True)):
        keys, values = (torch.cat(states).repeat_interleave(repeats, dim=0) for states in zip(*layer, strict=True))
        merged.update(keys, values, layer_idx)
    return merged


def pad_left(states: torch.Tensor, width: int) -> torch.Tensor:
    """(batch, heads, positions, dim) zero padded on the left to `width` positions (masked out by the caller)."""
    return torch.nn.functional.pad(states, (0, 0, width - states.shape[-2], 0))


class RowSampler:
    """Sampling for the hf backend, as its last logits processor under greedy selection: each row's next token is
    drawn here (temperature and top-p as transformers applies them, then the inverse of the cumulative
    distribution at a uniform draw) and every other token's score set to -inf, so generate's argmax takes it.

    Why not generate's own sampling: `torch.multinomial` draws an exponential variate for every vocabulary entry,
    35 ms a step for 32 rows x 49k tokens on this project's CPUs (one thread; a decode step of the embedded model
    is ~100 ms), where a cumulative sum and a binary search take 1-2 ms. Each prompt has its own random generator,
    seeded with seed + the prompt's index (as the vllm backend seeds its requests), and its `n` rows draw from it,
    so a prompt's samples do not depend on which prompts share its batch, on the batch size or on the
    out-of-memory retry (up to float rounding of the logits in a different batch)."""

    def __init__(self, sampling: Sampling, prompts: list[int]):
        from transformers.generation.logits_process import TopPLogitsWarper

        self.n, self.temperature = sampling.n, sampling.temperature
        self.top_p = TopPLogitsWarper(sampling.top_p) if sampling.top_p < 1.0 else None
        self.generators = [torch.Generator().manual_seed(sampling.seed + i) for i in prompts]
        self.buffers: tuple[torch.Tensor, torch.Tensor] | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        # The [rows, vocabulary] tensors of every step are written into two buffers kept for the batch: a fresh one
        # costs more in page faults than its arithmetic (32 x 49k fp32 on one core: a division 4.1 against 0.3 ms
        # inside generate, the softmax 4.9 against 1.2). The values are those transformers' warpers give.
        if self.buffers is None or self.buffers[0].shape != scores.shape:
            self.buffers = tuple(torch.empty(scores.shape, dtype=torch.float32, device=scores.device) for _ in range(2))
        warped, cdf = self.buffers
        torch.div(scores, self.temperature, out=warped)  # transformers' TemperatureLogitsWarper, in place
        if self.top_p is not None:
            warped.copy_(self.top_p(input_ids, warped))
        torch.softmax(warped, -1, out=cdf).cumsum_(-1)
        draws = torch.cat([torch.rand(self.n, generator=g) for g in self.generators]).to(cdf.device)
        tokens = torch.searchsorted(cdf, (draws * cdf[:, -1])[:, None], right=True).clamp_(max=cdf.shape[-1] - 1)
        return warped.fill_(float("-inf")).scatter_(1, tokens, 0.0)


@register_backend("hf")
class HFGenerator(Generator):
    def __init__(self, model_path: str, cfg: GenerationConfig, dtype: str = "float32"):
        self.cfg = cfg
        self.tokenizer = load_tokenizer(model_path)
        self.tokenizer.padding_side = "left"
        self.stop_criteria: dict[tuple[str, ...], object] = {}
        self.model = load_causal_lm(model_path, dtype)
        packed, folded = prepack_linears(self.model, cfg.batch_size), fold_gqa_decode(self.model)
        log.debug("hf backend: %d linear layers prepacked for oneDNN; GQA decode folded here: %s", packed, folded)

    def encode(self, conversations: list[list[dict]], prefill: str = "") -> list[list[int]]:
        return chat_prompt_ids(self.tokenizer, conversations, prefill)

    @torch.inference_mode()
    def generate(self, conversations, sampling: Sampling, desc: str = "generate") -> list[list[str]]:
        ids = self.encode(conversations, sampling.prefill)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        results: list[list[str] | None] = [None for _ in ids]
        bar = tqdm(total=len(ids), desc=desc, unit="prompt", leave=False)

        # accelerate shrinks the batch and calls again when a batch runs out of memory; finished rows are kept.
        @find_executable_batch_size(starting_batch_size=self.cfg.batch_size)
        def run(batch_size: int) -> None:
            todo = [i for i in order if results[i] is None]
            if batch_size < self.cfg.batch_size:
                log.warning("%s: out of memory, %d prompts left in batches of %d", desc, len(todo), batch_size)
            size = even_batch_size(len(todo), batch_size)
            for start in range(0, len(todo), size):
                batch = todo[start : start + size]
                self._generate_batch(ids, batch, sampling, results)
                bar.update(len(batch))

        run()
        bar.close()
        return results

    def _stop_criterion(self, stop: tuple[str, ...]):
        """transformers' stop-string criterion, built once per stop list: building it reads the whole vocabulary
        (~90 ms for 49k tokens), which `generate(stop_strings=...)` would do for every batch."""
        from transformers import StopStringCriteria

        if stop not in self.stop_criteria:
            self.stop_criteria[stop] = StopStringCriteria(self.tokenizer, list(stop))
        return self.stop_criteria[stop]

    def _generate_batch(self, ids: list[list[int]], batch: list[int], sampling: Sampling, results: list) -> None:
        """Generate for the prompts `batch` (indices into ids), left padded; sampled with `RowSampler`."""
        pad = self.tokenizer.pad_token_id
        input_ids, mask = left_padded([ids[i] for i in batch], pad)
        width = input_ids.shape[1]
        cache = prefilled_cache(self.model, [ids[i] for i in batch], pad, sampling.n, headroom=sampling.max_new_tokens)
        sampler = [RowSampler(sampling, batch)] if sampling.temperature > 0 else []
        stops = [self._stop_criterion(tuple(sampling.stop))] if sampling.stop else []
        out = self.model.generate(
            input_ids=input_ids.repeat_interleave(sampling.n, dim=0),
            attention_mask=mask.repeat_interleave(sampling.n, dim=0),
            **cache_kwarg(self.model, cache),
            max_new_tokens=sampling.max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            logits_processor=sampler,
            stopping_criteria=stops,
            pad_token_id=pad,
        )
        generated = out[:, width:]
        texts = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        stops = self.model.generation_config.eos_token_id
        stops = torch.tensor([stops] if isinstance(stops, int) else list(stops or []))
        ended = torch.isin(generated, stops).any(-1).tolist()
        ended = [e or any(s in t for s in sampling.stop) for e, t in zip(ended, texts, strict=True)]
        self.ended += sum(ended)
        self.cut += len(ended) - sum(ended)
        for j, i in enumerate(batch):
            results[i] = [finish(t, sampling) for t in texts[j * sampling.n : (j + 1) * sampling.n]]


def vllm_engine_kwargs(model_path: str, cfg: GenerationConfig, dtype: str, cuda: bool | None = None) -> dict:
    """Arguments of `vllm.LLM`, kept apart so the config mapping is tested where vLLM is not installed."""
    kwargs = {
        "model": model_path,
        "dtype": resolve_dtype(dtype),
        "tensor_parallel_size": cfg.tensor_parallel_size,
        "gpu_memory_utilization": cfg.gpu_memory_utilization,
    }
    if not (torch.cuda.is_available() if cuda is None else cuda):
        # vLLM's CPU build cannot rewind a seeded request's generator when a chunked-prefill step discards its
        # sample ("CPU Generator does not use offset"), and every request here is seeded: prefill whole prompts.
        kwargs["enable_chunked_prefill"] = False
    return kwargs


def vllm_sampling_kwargs(sampling: Sampling, index: int) -> dict:
    """Arguments of `vllm.SamplingParams` for the `index`-th prompt. Each prompt gets its own seed, so results
    do not depend on how the engine schedules prompts; vLLM derives the n samples' seeds from it."""
    greedy = sampling.temperature <= 0
    return {
        "n": sampling.n,
        "max_tokens": sampling.max_new_tokens,
        "temperature": 0.0 if greedy else sampling.temperature,
        "top_p": 1.0 if greedy else sampling.top_p,
        "stop": list(sampling.stop),
        "seed": sampling.seed + index,
        "skip_special_tokens": True,
    }


def vllm_prompts(tokenizer, conversations: list[list[dict]], prefill: str = "") -> list[dict]:
    """`vllm.inputs.TokensPrompt`s (typed dicts) holding the ids the `hf` backend would feed the model."""
    return [{"prompt_token_ids": ids} for ids in chat_prompt_ids(tokenizer, conversations, prefill)]


@register_backend("vllm")
class VLLMGenerator(Generator):
    def __init__(self, model_path: str, cfg: GenerationConfig, dtype: str = "float32"):
        try:
            from vllm import LLM
        except ImportError as e:
            raise ImportError("generation=vllm needs vLLM: pip install 'synpo[vllm]' (CPU: `make test-vllm`)") from e
        from vllm import envs

        if not envs.VLLM_ENABLE_V1_MULTIPROCESSING:
            log.warning(
                "VLLM_ENABLE_V1_MULTIPROCESSING=0: the vLLM engine runs in this process, and closing it frees its "
                "memory only as far as gc and torch.cuda.empty_cache can; a training stage after it may run out"
            )
        self.tokenizer = load_tokenizer(model_path)
        self.llm = LLM(**vllm_engine_kwargs(model_path, cfg, dtype))

    def close(self) -> None:
        """Shut the engine down: vLLM 0.32's `LLM` has no shutdown of its own, and deleting it does not reliably
        free its memory. The engine-core client's `shutdown()` stops the EngineCore process (SIGTERM, a 5 s grace,
        then SIGKILL) and joins it, so everything that process held (weights, KV cache, its CUDA context) is
        returned to the system before the next stage starts."""
        llm = vars(self).pop("llm", None)
        if llm is not None:
            llm.llm_engine.engine_core.shutdown()
            del llm
        super().close()

    def generate(self, conversations, sampling: Sampling, desc: str = "generate") -> list[list[str]]:
        from vllm import SamplingParams

        prompts = vllm_prompts(self.tokenizer, conversations, sampling.prefill)
        params = [SamplingParams(**vllm_sampling_kwargs(sampling, i)) for i in range(len(prompts))]
        log.info("%s: %d prompts to vLLM", desc, len(prompts))
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        cut = sum(c.finish_reason == "length" for o in outputs for c in o.outputs)
        self.cut += cut
        self.ended += sum(len(o.outputs) for o in outputs) - cut
        return [[finish(c.text, sampling) for c in sorted(o.outputs, key=lambda c: c.index)] for o in outputs]
