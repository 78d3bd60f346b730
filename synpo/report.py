"""`synpo-report DIR`: tables and plots of a finished or partial sweep (or of one run), from local files.

Reads every job's `.hydra/config.yaml`, `.hydra/overrides.yaml` and `summary.json`; writes into
`DIR/report/` (or `--out`):
- `main.md` / `main.csv`: one row per job and model (M0, M1, ...): the sweep's overrides, beta, threshold,
  pairs in D, SimPO loss, and the evaluation columns laid out as the paper's Tables 2-3 (AlpacaEval 2 LC
  and WR, Arena-Hard, MT-Bench), followed by the paper's own numbers in separate, labelled rows;
- `open_llm.md` / `open_llm.csv`: the Open LLM tasks and their average (Table 4), when evaluated;
- `<metric>_vs_beta.png` (one line per iteration) and `<metric>_vs_iteration.png` (one line per job).
Jobs a sweep planned but that have no summary yet are listed as missing, not treated as errors.

`synpo-report --table 2 DIR [DIR ...]` lays out runs of several methods (run or sweep folders) as the paper's
Table 2 in `table2.md` / `table2.csv` (under `--out`, default `./report`), and prints it: one row per evaluated
model with the method as a column (M0 is the `sft` row, shown once), AlpacaEval 2 LC / WR and Arena-Hard, then the
paper's rows of SFT, the three baselines and SynPO, labelled `paper`.

`synpo-report --table 6 DIR [DIR ...]` lays out the prompt-source ablation (`synpo -m +recipe=table6`) the same way,
in `table6.md` / `table6.csv`: iteration 1 of each method on each `method.prompt_source`, with SFT for reference.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import re
import sys
from importlib import resources
from pathlib import Path

from omegaconf import OmegaConf

from synpo.errors import ReportError

# Paper column -> (suite name prefix, metric key) in a model's evaluation results.
MAIN_COLUMNS = {
    "AE2 LC": ("alpaca_eval", "length_controlled_winrate"),
    "AE2 WR": ("alpaca_eval", "win_rate"),
    "Arena-Hard": ("arena_hard", "win_rate"),
    "MT-Bench T1": ("mt_bench", "turn_1"),
    "MT-Bench T2": ("mt_bench", "turn_2"),
    "MT-Bench": ("mt_bench", "average"),
}
# The judge-free columns: the gold answers' log-likelihood (synpo/stages/gold_likelihood.py; Δ is paired with M0)
# and the evaluation answers' length and share cut at the token limit (synpo/stages/evaluate.py).
JUDGE_FREE = {
    "gold LL": ("gold_likelihood", "mean"),
    "±": ("gold_likelihood", "ci95"),
    "Δ vs M0": ("gold_likelihood", "delta"),
    "Δ ±": ("gold_likelihood", "delta_ci95"),
    "answer tokens": ("answers", "mean_tokens"),
    "cut": ("answers", "cut_share"),
}
# Keys of evaluation.open_llm.TASKS (Table 4 of the paper, then the shipped mini tasks).
OPEN_LLM = ["arc", "hellaswag", "truthfulqa", "mmlu", "winogrande", "gsm8k", "mini_mc", "mini_gen"]


def evaluation_columns(model_eval: dict) -> dict:
    """One model's evaluation results as the report's columns (None where not evaluated)."""
    columns = {col: _metric(model_eval, *spec) for col, spec in (MAIN_COLUMNS | JUDGE_FREE).items()}
    for task in OPEN_LLM:
        value = _metric(model_eval, "lm_eval", task)
        columns[task] = value.get("score") if isinstance(value, dict) else value
    columns["unparsable verdicts"] = sum(
        r.get("metrics", r).get("n_unparsable", 0) for r in model_eval.values() if isinstance(r, dict)
    )
    return columns


def _metric(evaluation: dict, prefix: str, key: str):
    for suite, result in evaluation.items():
        if suite.startswith(prefix):
            value = result.get("metrics", result).get(key)
            if value is not None:
                return value
    return None


def _sweep_plan(root: Path) -> list[tuple[str, ...]] | None:
    """The swept override combinations a sweep planned (from Hydra's multirun.yaml), or None for one run."""
    plan = root / "multirun.yaml"
    if not plan.is_file():
        return None
    axes = []
    for o in OmegaConf.load(plan).hydra.overrides.task:
        key, _, values = o.partition("=")
        if "," in values and "[" not in values:
            axes.append([f"{key}={v}" for v in values.split(",")])
    return [tuple(c) for c in itertools.product(*axes)]


def job_dirs(root: Path) -> list[Path]:
    """The run folder itself (finished or not), or the job folders of a sweep."""
    if (root / "summary.json").is_file() or (root / ".hydra").is_dir():
        return [root]
    if (root / "multirun.yaml").is_file() or any(root.glob("*/.hydra")):
        return sorted((p for p in root.iterdir() if (p / ".hydra").is_dir()), key=lambda p: p.name)
    raise ReportError(f"{root} is not a sweep or run directory (no multirun.yaml, job folders or summary.json)")


def collect(root: Path) -> tuple[list[dict], list[str]]:
    """Rows of every finished job under `root`, and the planned jobs that have not finished."""
    finished = {
        job: list(OmegaConf.load(job / ".hydra" / "overrides.yaml"))
        for job in job_dirs(root)
        if (job / "summary.json").is_file()
    }
    # Overrides every job shares say nothing about a row: only what varies is shown.
    shared = set.intersection(*(set(o) for o in finished.values())) if len(finished) > 1 else set()
    rows = []
    for job, overrides in finished.items():
        rows.extend(job_rows(job, [o for o in overrides if o not in shared and not o.startswith("paths.")]))
    done = [set(o) for o in finished.values()]
    missing = [" ".join(combo) for combo in _sweep_plan(root) or [] if not any(set(combo) <= d for d in done)]
    return rows, missing


def job_rows(job: Path, overrides: list[str]) -> list[dict]:
    cfg = OmegaConf.load(job / ".hydra" / "config.yaml")
    summary = json.loads((job / "summary.json").read_text())
    counts = {s["label"]: s["counts"] for s in summary["stages"]}
    evaluation = summary.get("evaluation", {})
    rows = []
    for name in summary["models"]:
        # M<t> is iteration t; other models (SPA's seed_dpo, Self-Rewarding's ift_eft, ...) have no iteration.
        t = int(name[1:]) if re.fullmatch(r"M\d+", name) else None
        it = f"iter{t}"
        selected = counts.get(f"{it}/select_beta", {}).get("best_beta")
        policy = counts.get(f"{it}/policy" if selected is None else f"{it}/policy_beta{selected:g}", {})
        row = {
            "job": job.name,
            "overrides": " ".join(overrides) or "-",
            "method": cfg.method.name,
            "base": cfg.model.name,
            "model": name,
            "iteration": t,
            "beta": (selected if selected is not None else cfg.optimizer.beta) if t else None,
            "threshold": cfg.reward.threshold,
            "pairs": counts.get(f"{it}/pairs", {}).get("preference_set") if t else None,
            "simpo_loss": policy.get("train_loss") if t else None,
        }
        if name in evaluation:
            row.update(evaluation_columns(evaluation[name]))
        rows.append(row)
    return rows


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_table(rows: list[dict], columns: list[str], path: Path, title: str, notes: list[str]) -> None:
    with path.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"# {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |" for r in rows]
    path.with_suffix(".md").write_text("\n".join(lines + [""] + notes) + "\n")


def paper_rows(table: str) -> tuple[list[dict], str]:
    data = json.loads(resources.files("synpo").joinpath("data/paper_tables.json").read_text())
    rows = [{"job": "paper", "overrides": "-", "method": "synpo (paper)", **r} for r in data[table]]
    for r in rows:
        r["base"], r["model"] = r.pop("model"), r["iteration"]
    return rows, data["source"]


def plot(rows: list[dict], metrics: list[str], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for metric in metrics:
        points = [r for r in rows if isinstance(r.get(metric), int | float) and r["iteration"]]
        if not points:
            continue
        slug = metric.lower().replace(" ", "_").replace("-", "_")
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for t in sorted({r["iteration"] for r in points}):
            xs = sorted((r["beta"], r[metric]) for r in points if r["iteration"] == t and r["beta"] is not None)
            ax.plot([x for x, _ in xs], [y for _, y in xs], marker="o", label=f"M{t}")
        ax.set(xlabel="beta", ylabel=metric, title=f"{metric} against beta")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / f"{slug}_vs_beta.png", dpi=120)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for job in sorted({r["job"] for r in rows}):
            xs = [
                (r["iteration"], r[metric])
                for r in rows
                if r["job"] == job and r["iteration"] is not None and isinstance(r.get(metric), int | float)
            ]
            if xs:
                ax.plot(
                    [x for x, _ in xs],
                    [y for _, y in xs],
                    marker="o",
                    label=next(r["overrides"] for r in rows if r["job"] == job),
                )
        ax.set(xlabel="iteration", ylabel=metric, title=f"{metric} against iteration")
        ax.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(out / f"{slug}_vs_iteration.png", dpi=120)
        plt.close(fig)
        written += [out / f"{slug}_vs_beta.png", out / f"{slug}_vs_iteration.png"]
    return written


def report(root: Path, out: Path) -> dict:
    rows, missing = collect(root)
    out.mkdir(parents=True, exist_ok=True)
    notes = [f"Missing jobs (planned, not finished): {m}" for m in missing]
    notes.append("Evaluation columns of runs on the shipped mini suites are mini-suite scores, not the benchmarks'.")
    base = ["job", "overrides", "method", "base", "model", "beta", "threshold", "pairs", "simpo_loss"]
    reference, source = paper_rows("main")
    write_table(
        rows + reference, base + list(MAIN_COLUMNS), out / "main", "Results", notes + [f"Paper rows: {source}."]
    )
    if any(r.get(t) is not None for r in rows for t in OPEN_LLM):
        reference, source = paper_rows("open_llm")
        write_table(
            rows + reference, base[:5] + OPEN_LLM, out / "open_llm", "Open LLM tasks", [f"Paper rows: {source}."]
        )
    plots = plot(rows, [*MAIN_COLUMNS, "simpo_loss", "pairs"], out)
    return {"rows": len(rows), "missing": missing, "out": str(out), "plots": [p.name for p in plots]}


# Table 2 of the paper: its columns and its methods, in its order.
TABLE2_COLUMNS = ["AE2 LC", "AE2 WR", "Arena-Hard"]
TABLE2_METHODS = ["sft", "offline_simpo", "sampling_ranking", "self_rewarding", "synpo"]


def table2_rows(dirs: list[Path]) -> tuple[list[dict], list[str]]:
    """One row per evaluated model of every run under `dirs`; M0 is the `sft` row, kept once per base model and
    evaluation. Returns the rows and notes (runs without evaluation, runs evaluated with other settings)."""
    rows, notes, settings, seen_m0 = [], [], {}, set()
    for root in dirs:
        for job in job_dirs(root):
            if not (job / "summary.json").is_file():
                notes.append(f"{job}: not finished (no summary.json), left out")
                continue
            cfg = OmegaConf.load(job / ".hydra" / "config.yaml")
            evaluation = json.loads((job / "summary.json").read_text()).get("evaluation", {})
            if not evaluation:
                notes.append(f"{job}: not evaluated (evaluation=none), left out")
                continue
            settings.setdefault(json.dumps(OmegaConf.to_container(cfg.evaluation), sort_keys=True), []).append(job)
            for name, results in evaluation.items():
                columns = evaluation_columns(results)
                row = {
                    "source": "this project",
                    "method": "sft" if name == "M0" else cfg.method.name,
                    "prompts": None if name == "M0" else cfg.method.get("prompt_source"),
                    "base": cfg.model.name,
                    "model": name,
                    **{c: columns[c] for c in TABLE2_COLUMNS},
                    "unparsable verdicts": columns["unparsable verdicts"],
                    "run": str(job),
                }
                if name == "M0":
                    key = (row["base"], *(row[c] for c in TABLE2_COLUMNS))
                    if key in seen_m0:
                        continue
                    seen_m0.add(key)
                rows.append(row)
    if len(settings) > 1:
        groups = "; ".join(", ".join(str(j) for j in jobs) for jobs in settings.values())
        notes.append(f"The runs were evaluated with different settings, not comparable across groups: {groups}")

    def order(row: dict) -> tuple:
        method = TABLE2_METHODS.index(row["method"]) if row["method"] in TABLE2_METHODS else len(TABLE2_METHODS)
        iteration = int(row["model"][1:]) if re.fullmatch(r"M\d+", row["model"]) else -1
        return (method, row["method"], row["base"], iteration, row["model"])

    return sorted(rows, key=order), notes


def table2_paper_rows() -> tuple[list[dict], str]:
    """The paper's Table 2: SFT and SynPO's iterations, then the baselines at the iteration it reports."""
    data = json.loads(resources.files("synpo").joinpath("data/paper_tables.json").read_text())
    rows = []
    for r in data["main"] + data["table2_baselines"]:
        method = r.get("method") or ("sft" if r["iteration"] == "SFT" else "synpo")
        model = r["iteration"] if method == "sft" else f"iteration {r['iteration']}"
        rows.append({"source": "paper", "method": method, "base": r["model"], "model": model, "run": "-"})
        rows[-1].update({c: r.get(c) for c in TABLE2_COLUMNS})
    bases = list(dict.fromkeys(r["base"] for r in rows))  # the paper's order: Mistral-Base, then Llama3-Base
    return sorted(rows, key=lambda r: (bases.index(r["base"]), TABLE2_METHODS.index(r["method"]))), data["source"]


def report_table2(dirs: list[Path], out: Path) -> dict:
    rows, notes = table2_rows(dirs)
    if not rows:
        raise ReportError("no evaluated run among " + ", ".join(map(str, dirs)) + " (run with evaluation=demo)")
    paper, source = table2_paper_rows()
    notes.append(
        "Rows of this project are the mini suites' scores (AlpacaEval-style LC / WR, Arena-Hard-style WR, in %, "
        "judged by the local judge), not the benchmarks'; unparsable judge verdicts are counted, never scored."
    )
    notes.append(f"Paper rows: {source}; the baselines at the iteration the paper reports.")
    out.mkdir(parents=True, exist_ok=True)
    columns = ["source", "method", "base", "model", *TABLE2_COLUMNS, "unparsable verdicts", "run"]
    write_table(rows + paper, columns, out / "table2", "Table 2: SFT, the baselines and SynPO", notes)
    return {"rows": len(rows), "out": str(out), "text": (out / "table2.md").read_text()}


TABLE6_SOURCES = ["ultrafeedback", "self_instruct", "generator", "mix", "seed"]


def report_table6(dirs: list[Path], out: Path) -> dict:
    """Table 6: M1 of every run by method and prompt source (the sweep of `+recipe=table6`), SFT first."""
    rows, notes = table2_rows(dirs)
    rows = [r for r in rows if r["model"] in ("M0", "M1")]
    if not any(r["model"] == "M1" for r in rows):
        raise ReportError("no evaluated iteration 1 among " + ", ".join(map(str, dirs)) + " (synpo -m +recipe=table6)")

    def order(row: dict) -> tuple:
        source = TABLE6_SOURCES.index(row["prompts"]) if row["prompts"] in TABLE6_SOURCES else -1
        return (row["model"] != "M0", row["method"], source)

    notes.append(
        "Mini suites' scores (AlpacaEval-style LC / WR, Arena-Hard-style WR, in %, local judge), not the benchmarks'. "
        "mix = equal shares of method.mix's sources."
    )
    out.mkdir(parents=True, exist_ok=True)
    columns = ["method", "prompts", "base", "model", *TABLE2_COLUMNS, "unparsable verdicts", "run"]
    write_table(sorted(rows, key=order), columns, out / "table6", "Table 6: where the prompts come from", notes)
    return {"rows": len(rows), "out": str(out), "text": (out / "table6.md").read_text()}


TABLES = {"2": report_table2, "6": report_table6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="synpo-report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "dirs", type=Path, nargs="+", metavar="DIR", help="a sweep folder (multirun/<date>/<time>) or one run folder"
    )
    parser.add_argument(
        "--table",
        choices=["main", *TABLES],
        default="main",
        help="main: one sweep or run (default); 2: Table 2 of runs; 6: the prompt-source ablation",
    )
    parser.add_argument("--out", type=Path, help="where to write (default: DIR/report; ./report for --table 2 / 6)")
    args = parser.parse_args(argv)
    try:
        if args.table in TABLES:
            result = TABLES[args.table](args.dirs, args.out or Path("report"))
            name = f"table{args.table}"
            print(result["text"] + f"\n{result['rows']} rows -> {result['out']}/{name}.md, {name}.csv")
            return 0
        if len(args.dirs) > 1:
            raise ReportError("give one DIR (several run folders go with --table 2 or 6)")
        result = report(args.dirs[0], args.out or args.dirs[0] / "report")
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"{result['rows']} rows -> {result['out']}/main.md, main.csv"
        + (", plots: " + ", ".join(result["plots"]) if result["plots"] else "")
    )
    for m in result["missing"]:
        print(f"missing job: {m}")
    return 0
