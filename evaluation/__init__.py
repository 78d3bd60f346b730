"""Benchmarks of the SynPO paper, thin over their own libraries: AlpacaEval 2.0, Arena-Hard v0.1, MT-Bench
and the Open LLM tasks of lm-eval; plus "mini" suites written for this project that run offline on CPU.

`run` checks every input (suites, files, lm-eval tasks, checkpoint, judge) before it generates anything, then
writes `<out_dir>/<model>/<suite name>.json` per suite. Answers and judgments are appended per chunk to JSONL
files in `<out_dir>/<model>/<suite name>/`, so a suite that fails half-way resumes where it stopped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from synpo.config import EvaluationConfig, GenerationConfig, check_object
from synpo.errors import EvaluationError
from synpo.evaluation import alpaca, arena_hard, mt_bench, open_llm
from synpo.evaluation.common import settings, write_result

log = logging.getLogger(__name__)

SUITES = {"alpaca_eval": alpaca, "arena_hard": arena_hard, "mt_bench": mt_bench, "lm_eval": open_llm}
JUDGED = ("alpaca_eval", "arena_hard", "mt_bench")
# The dated judge models of the paper's benchmarks (AlpacaEval 2 and Arena-Hard v0.1: GPT-4 Turbo; MT-Bench: GPT-4).
PAPER_JUDGES = {"alpaca_eval": "gpt-4-1106-preview", "arena_hard": "gpt-4-1106-preview", "mt_bench": "gpt-4"}
MOVING_ALIASES = ("gpt-4-turbo", "gpt-4-turbo-preview", "gpt-4o", "chatgpt-4o-latest", "gpt-4o-mini")

__all__ = ["SUITES", "EvaluationError", "check_files", "run", "validate"]


@dataclass
class Context:
    """What a suite needs from the run; the generator and the judge load once, on first use."""

    model_path: str
    model_name: str
    dtype: str
    generation: GenerationConfig
    judge_cfg: object
    judge_default_model: str | None
    seed: int
    work: Path = Path(".")
    _models: dict = field(default_factory=dict)

    @property
    def top_p(self) -> float:
        return self.generation.top_p

    @property
    def chunk(self) -> int:
        return self.generation.batch_size

    @property
    def judge_name(self) -> str | None:
        return self.judge_cfg.model or self.judge_default_model

    def generator(self):
        from synpo.generation import make_generator

        if "generator" not in self._models:
            self._models["generator"] = make_generator(self.model_path, self.generation, self.dtype)
        return self._models["generator"]

    def take_termination(self) -> dict | None:
        """How the answers generated since the last call ended, per suite (None when no answer was generated here,
        e.g. all came from the suite's log)."""
        generator = self._models.get("generator")
        if generator is None:
            return None
        counts = generator.termination()
        generator.ended = generator.cut = 0
        return counts

    def judge(self):
        from synpo.judges import make_judge_client

        if "judge" not in self._models:
            self._models["judge"] = make_judge_client(self.judge_cfg, self.judge_default_model, "evaluation.judge")
        return self._models["judge"]

    def close(self) -> None:
        """Release the generator and the judge (each loads again on its next use)."""
        for model in self._models.values():
            model.close()
        self._models.clear()


def check_verdict(kind: str, cfg: EvaluationConfig) -> None:
    """An endpoint judge is asked only for what it can return: AlpacaEval's one-token verdict reads its top
    log-probabilities; Arena-Hard's and MT-Bench's labels need a local judge (the modes' names are checked with the
    other choices of the schema)."""
    own = getattr(cfg, kind).verdict
    key, verdict = (f"evaluation.{kind}.verdict", own) if own else ("evaluation.judge.verdict", cfg.judge.verdict)
    if verdict == "logprobs" and cfg.judge.backend == "openai" and kind != "alpaca_eval":
        raise EvaluationError(
            f"{key}=logprobs: {kind}'s verdict labels need a local judge (evaluation.judge.backend=local); an "
            f"endpoint writes its judgment (set {key}=generate)"
        )


def warn_moving_alias(model: str | None, backend: str, suites: list[str]) -> None:
    """An endpoint alias that OpenAI repoints over time gives numbers that drift; name the paper's dated model."""
    if backend == "openai" and model in MOVING_ALIASES:
        dated = ", ".join(f"{PAPER_JUDGES[s]} for {s}" for s in suites)
        log.warning(
            "evaluation.judge.model=%s is an alias that moves to newer models over time; the paper's judges were %s",
            model,
            dated,
        )


def check_files(cfg: EvaluationConfig) -> None:
    """The local suite files of `cfg.suites` exist and parse (no model, no heavy import): the start-up's first look."""
    if "alpaca_eval" in cfg.suites and cfg.alpaca_eval.data != "hub":
        alpaca.load_suite(cfg.alpaca_eval.data)
    if "arena_hard" in cfg.suites:
        questions = arena_hard.load_questions(cfg.arena_hard.questions, cfg.arena_hard.limit)
        arena_hard.load_answers(cfg.arena_hard.baseline_answers, questions)
    if "mt_bench" in cfg.suites:
        mt_bench.load_questions(cfg.mt_bench)


def validate(model_path: str, cfg: EvaluationConfig, judge_default_model: str | None = None) -> None:
    """Fail on bad input before any generation, naming the config key."""
    from synpo.errors import ConfigError, JudgeError, ModelError
    from synpo.judges import make_judge_client
    from synpo.models import check_loadable

    try:
        check_object(cfg, "evaluation")
    except ConfigError as e:
        raise EvaluationError(str(e)) from None
    try:
        check_loadable(model_path, "model_path")
    except ModelError as e:
        raise EvaluationError(str(e)) from e
    check_files(cfg)
    if "lm_eval" in cfg.suites:
        open_llm.validate(cfg.lm_eval)
    judged = [s for s in cfg.suites if s in JUDGED]
    for kind in judged:
        check_verdict(kind, cfg)
    if judged:
        warn_moving_alias(cfg.judge.model or judge_default_model, cfg.judge.backend, judged)
        try:
            make_judge_client(cfg.judge, judge_default_model, "evaluation.judge").check_reachable()
        except JudgeError as e:
            raise EvaluationError(str(e)) from e


def run(
    model_path: str,
    cfg: EvaluationConfig,
    out_dir: Path,
    generation: GenerationConfig,
    *,
    model_name: str | None = None,
    dtype: str = "float32",
    judge_default_model: str | None = None,
) -> dict[str, dict]:
    """Run `cfg.suites` on one model; return {suite name: result} and write one JSON file per suite.

    `model_name` names the output folder and the model in judgments (default: the checkpoint folder's name);
    `judge_default_model` is the local judge used when `cfg.judge.model` is not set.
    """
    validate(model_path, cfg, judge_default_model)
    model_name = model_name or Path(model_path).name
    ctx = Context(model_path, model_name, dtype, generation, cfg.judge, judge_default_model, cfg.seed)
    results = {}
    try:
        for kind in cfg.suites:
            suite_cfg = getattr(cfg, kind)
            ctx.work = Path(out_dir) / model_name / suite_cfg.name
            log.info("evaluation: %s on %s", suite_cfg.name, model_name)
            started = time.time()
            out = SUITES[kind].evaluate(ctx, suite_cfg)
            result = {
                "suite": suite_cfg.name,
                "benchmark": kind,
                "model": model_name,
                "model_path": str(model_path),
                "n_items": out["n_items"],
                "metrics": out["metrics"],
                "generation": settings(out["generation"]),
                "answer_termination": ctx.take_termination(),
                "judge": {**settings(cfg.judge), "model": ctx.judge_name} if kind in JUDGED else None,
                "config": settings(suite_cfg),
                "seed": cfg.seed,
            }
            results[suite_cfg.name] = write_result(
                Path(out_dir) / model_name / f"{suite_cfg.name}.json", result, started
            )
    finally:
        ctx.close()
    return results
