"""Open LLM leaderboard tasks (and the mini local tasks) through `lm_eval.simple_evaluate`.

`TASKS` is the paper's table: task -> (lm-eval task, shots, metric). lm-eval takes one shot count per call, so each
task is its own call on one loaded model; a finished task is logged and not rerun.

`evaluation.lm_eval.apply_chat_template` is lm-eval's option of that name. The paper does not say whether its harness
runs used a chat template; the default (false: plain few-shot text) is the Open LLM leaderboard's setting of the
paper's time. Every result row records it.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass

from synpo.errors import EvaluationError
from synpo.evaluation.common import ItemLog
from synpo.io import resolve_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    task: str
    num_fewshot: int
    metric: str
    filter: str = "none"


TASKS = {
    # Table 4 (the Open LLM leaderboard's settings).
    "arc": Task("arc_challenge", 25, "acc_norm"),
    "hellaswag": Task("hellaswag", 10, "acc_norm"),
    "truthfulqa": Task("truthfulqa_mc2", 0, "acc"),  # lm-eval reports the mc2 score as truthfulqa_mc2's `acc`
    "mmlu": Task("mmlu", 5, "acc"),
    "winogrande": Task("winogrande", 5, "acc"),
    "gsm8k": Task("gsm8k", 5, "exact_match", "strict-match"),
    # Table 5, all 5-shot. The paper does not name the metric: `acc`, except OpenBookQA's `acc_norm`, the one
    # its reported SFT numbers (~46) match.
    "openbookqa": Task("openbookqa", 5, "acc_norm"),
    "haerae": Task("haerae", 5, "acc"),
    "mathqa": Task("mathqa", 5, "acc"),
    "xnli": Task("xnli", 5, "acc"),
    "toxigen": Task("toxigen", 5, "acc"),
    "prost": Task("prost", 5, "acc"),
    # The mini tasks written for this project (evaluation/suites/lm_eval_mini), offline.
    "mini_mc": Task("lm_eval_mini_mc", 3, "acc_norm"),
    "mini_gen": Task("lm_eval_mini_gen", 3, "exact_match", "strict-match"),
}


def scores(out: dict) -> dict:
    """The known tasks' scores in lm-eval's output (what `simple_evaluate` returns and `lm_eval --output_path`
    writes as results_<date>.json), by TASKS key: one reader for the suite and for `synpo-report --table 4 / 5`."""
    found = {}
    for key, spec in TASKS.items():
        res = out.get("results", {}).get(spec.task, {})
        if f"{spec.metric},{spec.filter}" in res:
            found[key] = {
                **asdict(spec),
                "score": res[f"{spec.metric},{spec.filter}"],
                "stderr": res.get(f"{spec.metric}_stderr,{spec.filter}"),
                "n_samples": out.get("n-samples", {}).get(spec.task),
                "lm_eval_version": out.get("versions", {}).get(spec.task),
            }
    return found


@functools.cache
def task_manager(include_path: str | None, tasks: tuple[str, ...] = ()):
    """lm-eval's task index, built once per process. Indexing lm-eval's own ~15k tasks takes 4-8 s (once for the
    start-up check and twice per evaluated model before); when every task asked for is in `include_path` (the mini
    tasks), only that folder is indexed (milliseconds)."""
    from lm_eval.tasks import TaskManager

    folder = str(resolve_path(include_path)) if include_path else None
    if folder and tasks:
        own = TaskManager(include_path=folder, include_defaults=False)
        if set(tasks) <= set(own.all_tasks):
            return own
    return TaskManager(include_path=folder)


def lm_eval_tasks(cfg) -> tuple[str, ...]:
    return tuple(TASKS[k].task for k in cfg.tasks)


def validate(cfg) -> None:
    """lm-eval task names it does not know (the keys are checked by the schema) fail here, before any model loads."""
    if cfg.include_path and not resolve_path(cfg.include_path).is_dir():
        raise EvaluationError(f"evaluation.lm_eval.include_path={cfg.include_path!r}: no such folder")
    known = set(task_manager(cfg.include_path, lm_eval_tasks(cfg)).all_tasks)
    missing = [TASKS[k].task for k in cfg.tasks if TASKS[k].task not in known]
    if missing:
        raise EvaluationError(f"evaluation.lm_eval.tasks: lm-eval knows no task {missing} (include_path?)")


def evaluate(ctx, cfg) -> dict:
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    manager = task_manager(cfg.include_path, lm_eval_tasks(cfg))
    lm = None

    def run(chunk: list[dict]) -> list[dict]:
        nonlocal lm
        if lm is None:
            lm = HFLM(pretrained=ctx.model_path, batch_size=cfg.batch_size, device=cfg.device, dtype=ctx.dtype)
        spec = TASKS[chunk[0]["key"]]
        out = lm_eval.simple_evaluate(
            model=lm,
            tasks=[spec.task],
            num_fewshot=spec.num_fewshot,
            limit=cfg.limit,
            task_manager=manager,
            apply_chat_template=cfg.apply_chat_template,
            log_samples=False,
            bootstrap_iters=cfg.bootstrap_iters,
            random_seed=ctx.seed,
            numpy_random_seed=ctx.seed,
            torch_random_seed=ctx.seed,
            fewshot_random_seed=ctx.seed,
        )
        return [
            {"key": chunk[0]["key"], **scores(out)[chunk[0]["key"]], "apply_chat_template": cfg.apply_chat_template}
        ]

    items = [{"key": k} for k in cfg.tasks]
    rows = ItemLog(ctx.work / "tasks.jsonl", "key").fill(items, run, 1)
    metrics = {r["key"]: {k: v for k, v in r.items() if k != "key"} for r in rows}
    settings = {
        "batch_size": cfg.batch_size,
        "device": cfg.device,
        "limit": cfg.limit,
        "dtype": ctx.dtype,
        "apply_chat_template": cfg.apply_chat_template,
    }
    return {"metrics": metrics, "generation": settings, "n_items": len(rows)}
