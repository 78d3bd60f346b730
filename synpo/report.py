"""`synpo-report DIR`: tables and plots of a finished or partial sweep (or of one run), from local files.

Reads every job's `.hydra/config.yaml`, `.hydra/overrides.yaml` and `summary.json`; writes into
`DIR/report/` (or `--out`):
- `main.md` / `main.csv`: one row per job and model (M0, M1, ...): the sweep's overrides, beta, threshold,
  pairs in D, SimPO loss, and the evaluation columns laid out as the paper's Tables 2-3 (AlpacaEval 2 LC
  and WR, Arena-Hard, MT-Bench), followed by the paper's own numbers in separate, labelled rows;
- `open_llm.md` / `open_llm.csv`: the Open LLM tasks and their average (Table 4, in %), when evaluated;
- `<metric>_vs_beta.png` (one line per iteration) and `<metric>_vs_iteration.png` (one line per job);
- `index.html`: those tables, the plots and the first pairs each iteration added, one static page for clusters
  where W&B cannot be reached.
Jobs a sweep planned but that have no summary yet are listed as missing, not treated as errors.

`synpo-report --table 2 DIR [DIR ...]` lays out runs of several methods (run or sweep folders) as the paper's
Table 2 in `table2.md` / `table2.csv` (under `--out`, default `./report`), and prints it: one row per evaluated
model with the method as a column (M0 is the `sft` row, shown once), AlpacaEval 2 LC / WR and Arena-Hard, then the
paper's rows of SFT, the three baselines and SynPO, labelled `paper`.

`synpo-report --table 6 DIR [DIR ...]` lays out the prompt-source ablation (`synpo -m +recipe=table6`) the same way,
in `table6.md` / `table6.csv`: iteration 1 of each method on each `method.prompt_source`, with SFT for reference,
then the paper's rows.

`--table 3` (MT-Bench turns 1 and 2), `--table 4` (the Open LLM tasks and their average, in %), `--table 5` (the six
further lm-eval tasks) and `--table 7` (a `method=seed_only` run's models beside SynPO's iterations) do the same for
those tables, each followed by the paper's rows. Tables 4 and 5 also take lm-eval's own results files (a
`results_*.json` or a folder of them, as `lm_eval --output_path` writes) for models evaluated outside synpo.
"""

from __future__ import annotations

import argparse
import csv
import html
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
# The GLM behind a row's AE2 LC (not a printed column).
LC_GLM = "lc_glm"
# The paper's column -> the key of evaluation.open_llm.TASKS: Table 4 (the Open LLM leaderboard) and Table 5.
TABLE4_TASKS = {
    "ARC": "arc",
    "HellaSwag": "hellaswag",
    "TruthfulQA": "truthfulqa",
    "MMLU": "mmlu",
    "Winogrande": "winogrande",
    "GSM8K": "gsm8k",
}
TABLE5_TASKS = {
    "OBQA": "openbookqa",
    "HAE-RAE": "haerae",
    "MathQA": "mathqa",
    "XNLI": "xnli",
    "ToxiGen": "toxigen",
    "PROST": "prost",
}
# The lm_eval suite's names in conf/evaluation (evaluation.lm_eval.name: lm_eval_mini, open_llm).
LM_EVAL_SUITES = ("lm_eval", "open_llm")
MINI_TASKS = {"mini_mc": "mini_mc", "mini_gen": "mini_gen"}
# Every lm-eval task a model may have been evaluated on: the paper's, then the shipped mini tasks.
OPEN_LLM = [*TABLE4_TASKS.values(), *TABLE5_TASKS.values(), *MINI_TASKS.values()]
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


def evaluation_columns(model_eval: dict) -> dict:
    """One model's evaluation results as the report's columns (None where not evaluated)."""
    columns = {col: _metric(model_eval, *spec) for col, spec in (MAIN_COLUMNS | JUDGE_FREE).items()}
    for task in OPEN_LLM:
        value = _metric(model_eval, LM_EVAL_SUITES, task)
        columns[task] = value.get("score") if isinstance(value, dict) else value
    columns["unparsable verdicts"] = sum(
        r.get("metrics", r).get("n_unparsable", 0) for r in model_eval.values() if isinstance(r, dict)
    )
    columns[LC_GLM] = _metric(model_eval, "alpaca_eval", "glm") if columns["AE2 LC"] is not None else None
    return columns


def offline_lc_notes(rows: list[dict]) -> list[str]:
    """The note that goes wherever an LC from the offline GLM is printed: it is not the leaderboard's LC."""
    if any(r.get(LC_GLM) == "length_controlled_minimal" for r in rows):
        from synpo.evaluation.alpaca import OFFLINE_LC_NOTE

        return [f"AE2 LC: {OFFLINE_LC_NOTE}."]
    return []


def _metric(evaluation: dict, prefix: str | tuple[str, ...], key: str):
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


def lm_eval_percent(row: dict, tasks: dict, average: bool = True) -> dict:
    """A row's lm-eval scores (fractions) as the paper's columns in %, with their mean over `tasks` as "Average"
    when every one of them was evaluated."""
    values = {col: None if row.get(key) is None else round(100 * row[key], 2) for col, key in tasks.items()}
    if not average:
        return values
    complete = all(v is not None for v in values.values())
    return {**values, "Average": round(sum(values.values()) / len(values), 2) if complete else None}


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_table(rows: list[dict], columns: list[str], path: Path, title: str, notes: list[str]) -> dict:
    """`path`.md and .csv; returns the table for index.html."""
    with path.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"# {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |" for r in rows]
    if "AE2 LC" in columns:
        notes = notes + offline_lc_notes(rows)
    path.with_suffix(".md").write_text("\n".join(lines + [""] + notes) + "\n")
    return {"title": title, "columns": columns, "rows": rows, "notes": notes}


SAMPLE_PAIRS = 3  # per iteration in index.html
PAIR_COLUMNS = ["prompt", "rejected", "chosen", "gap"]


def sample_pairs(root: Path) -> list[tuple[str, list[dict]]]:
    """The first pairs each finished job added per iteration (every stage that wrote a `pairs.jsonl`: SynPO's and
    the baselines' pair stages), as (job and stage label, rows); stages whose files are gone are skipped."""
    from synpo.io import read_jsonl

    found = []
    for job in job_dirs(root):
        if not (job / "summary.json").is_file():
            continue
        for stage in json.loads((job / "summary.json").read_text())["stages"]:
            path = job / "stages" / stage["label"] / "pairs.jsonl"
            if path.is_file():
                found.append((f"{job.name}: {stage['label']}", read_jsonl(path)[:SAMPLE_PAIRS]))
    return found


def _html_table(columns: list[str], rows: list[dict], pre: bool = False) -> str:
    def cell(value) -> str:
        text = html.escape(_fmt(value) if not isinstance(value, str) else value)
        return f"<td><div class=text>{text}</div></td>" if pre else f"<td>{text}</td>"

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(cell(r.get(c)) for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_html(path: Path, title: str, tables: list[dict], plots: list[Path], samples: list) -> None:
    """A static page of the report (no script, no network: it opens from a cluster's file system as it is)."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for t in tables:
        parts += [f"<h2>{html.escape(t['title'])}</h2>", _html_table(t["columns"], t["rows"])]
        parts += [f"<p class=note>{html.escape(n)}</p>" for n in t["notes"]]
    if plots:
        parts.append("<h2>Plots</h2>")
        parts += [f'<img src="{html.escape(p.name)}" alt="{html.escape(p.stem)}">' for p in plots]
    if samples:
        parts.append(f"<h2>Sample pairs (the first {SAMPLE_PAIRS} added per iteration)</h2>")
        for label, rows in samples:
            parts += [f"<h3>{html.escape(label)}</h3>", _html_table(PAIR_COLUMNS, rows, pre=True)]
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:.2em .5em;vertical-align:top}th{background:#eee}"
        ".text{white-space:pre-wrap;max-width:40em;max-height:20em;overflow:auto}.note{color:#555}"
        "img{margin:.5em;border:1px solid #ddd}"
    )
    path.write_text(
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<link rel=icon href="data:,"><style>{style}</style></head><body>\n' + "\n".join(parts) + "\n</body></html>\n",
        encoding="utf-8",
    )


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
    tables = [
        write_table(
            rows + reference, base + list(MAIN_COLUMNS), out / "main", "Results", notes + [f"Paper rows: {source}."]
        )
    ]
    if any(r.get(t) is not None for r in rows for t in OPEN_LLM):
        reference, source = paper_rows("open_llm")
        percent = [
            {**r, **lm_eval_percent(r, TABLE4_TASKS), **lm_eval_percent(r, MINI_TASKS, average=False)} for r in rows
        ]
        columns = base[:5] + [*TABLE4_TASKS, "Average", *MINI_TASKS]
        tables.append(
            write_table(
                percent + reference, columns, out / "open_llm", "Open LLM tasks (%)", [f"Paper rows: {source}."]
            )
        )
    plots = plot(rows, [*MAIN_COLUMNS, "simpo_loss", "pairs"], out)
    write_html(out / "index.html", f"synpo report: {root}", tables, plots, sample_pairs(root))
    return {"rows": len(rows), "missing": missing, "out": str(out), "plots": [p.name for p in plots]}


# Table 2 of the paper: its columns and its methods, in its order (Table 7's seed-only ablations before SynPO).
TABLE2_COLUMNS = ["AE2 LC", "AE2 WR", "Arena-Hard"]
TABLE2_METHODS = ["sft", "offline_simpo", "sampling_ranking", "self_rewarding", "seed_only", "synpo"]


def lm_eval_files(root: Path) -> list[Path]:
    """lm-eval's own results files under `root` (`lm_eval --output_path` writes <model>/results_<date>.json), for
    models evaluated outside synpo; none when `root` is a run or sweep folder."""
    if root.is_file() and root.suffix == ".json":
        return [root]
    if not root.is_dir() or (root / ".hydra").is_dir() or (root / "multirun.yaml").is_file():
        return []
    return sorted(root.rglob("results_*.json"))


def lm_eval_file_rows(files: list[Path]) -> tuple[list[dict], list[str]]:
    """One row per model of lm-eval results files; a model's tasks may be spread over several files (lm-eval takes
    one shot count per call)."""
    from synpo.evaluation.open_llm import scores

    models, notes = {}, []
    for path in files:
        try:
            out = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ReportError(f"{path}: not an lm-eval results file ({e})") from None
        found = scores(out) if isinstance(out, dict) else {}
        if not found:
            notes.append(f"{path}: no task of evaluation/open_llm.py's TASKS (with its metric), left out")
            continue
        name = out.get("model_name") or out.get("config", {}).get("model_args") or path.parent.name
        row = models.setdefault(
            name, {"source": "lm-eval results", "method": "-", "prompts": None, "base": "-", "model": name}
        )
        row.update({key: r["score"] for key, r in found.items()})
        row["run"] = ", ".join(filter(None, [row.get("run"), str(path)]))
    return list(models.values()), notes


def table2_rows(dirs: list[Path], dedupe: list[str] = TABLE2_COLUMNS) -> tuple[list[dict], list[str]]:
    """One row per evaluated model of every run under `dirs` (and of lm-eval results files among them); M0 is the
    `sft` row, kept once per base model and values of `dedupe`. Returns the rows and notes (runs without
    evaluation, runs evaluated with other settings)."""
    rows, notes, settings, seen_m0 = [], [], {}, set()
    for root in dirs:
        files = lm_eval_files(root)
        if files:
            found, file_notes = lm_eval_file_rows(files)
            rows, notes = rows + found, notes + file_notes
            continue
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
                row = {
                    "source": "this project",
                    "method": "sft" if name == "M0" else cfg.method.name,
                    "prompts": None if name == "M0" else cfg.method.get("prompt_source"),
                    "base": cfg.model.name,
                    "model": name,
                    **evaluation_columns(results),
                    "run": str(job),
                }
                if name == "M0":
                    key = (row["base"], *(row[c] for c in dedupe))
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
        return (row["source"] != "this project", method, row["method"], row["base"], iteration, row["model"])

    return sorted(rows, key=order), notes


def paper_table_rows(*tables: str) -> tuple[list[dict], str]:
    """Rows of paper_tables.json labelled `paper`: SFT, SynPO's iterations ("iteration t"), a baseline's `method`,
    or a Table 7 `setting`."""
    data = json.loads(resources.files("synpo").joinpath("data/paper_tables.json").read_text())
    rows = []
    for entry in (dict(e) for table in tables for e in data[table]):
        base = entry.pop("model")
        if "setting" in entry:
            model = entry["setting"]
            method = "synpo" if model.startswith("SynPO") else "seed_only"
        else:
            it = entry.pop("iteration")
            method = entry.pop("method", None) or ("sft" if it == "SFT" else "synpo")
            model = it if method == "sft" else f"iteration {it}"
        rows.append({"source": "paper", "method": method, "base": base, "model": model, "run": "-", **entry})
    return rows, data["source"]


def table2_paper_rows() -> tuple[list[dict], str]:
    """The paper's Table 2: SFT and SynPO's iterations, then the baselines at the iteration it reports."""
    rows, source = paper_table_rows("main", "table2_baselines")
    bases = list(dict.fromkeys(r["base"] for r in rows))  # the paper's order: Mistral-Base, then Llama3-Base
    return sorted(rows, key=lambda r: (bases.index(r["base"]), TABLE2_METHODS.index(r["method"]))), source


def report_table2(dirs: list[Path], out: Path) -> dict:
    rows, notes = table2_rows(dirs)
    rows = [r for r in rows if r["source"] == "this project"]
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


MT_BENCH_COLUMNS = ["MT-Bench T1", "MT-Bench T2", "MT-Bench"]


def report_table3(dirs: list[Path], out: Path) -> dict:
    """Table 3: MT-Bench turns 1 and 2 (and their mean) of every evaluated model, then the paper's rows."""
    rows, notes = table2_rows(dirs, MT_BENCH_COLUMNS)
    rows = [r for r in rows if r["source"] == "this project" and r["MT-Bench T1"] is not None]
    if not rows:
        raise ReportError(
            "no run among " + ", ".join(map(str, dirs)) + " was evaluated on MT-Bench (evaluation=demo or paper)"
        )
    paper, source = paper_table_rows("main")
    notes.append(
        "Rows of this project are the MT-Bench mini suite's scores (1-10, judged by the local judge) when it ran "
        "evaluation=mini / demo, not the benchmark's; unparsable judge verdicts are counted, never scored."
    )
    notes.append(f"Paper rows: {source} (turns 1 and 2; the paper gives no mean).")
    columns = ["source", "method", "base", "model", *MT_BENCH_COLUMNS, "unparsable verdicts", "run"]
    out.mkdir(parents=True, exist_ok=True)
    write_table(rows + paper, columns, out / "table3", "Table 3: MT-Bench, turns 1 and 2", notes)
    return {"rows": len(rows), "out": str(out), "text": (out / "table3.md").read_text()}


def _lm_eval_table(number: str, tasks: dict, paper_key: str, title: str):
    def build(dirs: list[Path], out: Path) -> dict:
        rows, notes = table2_rows(dirs, list(tasks.values()))
        rows = [{**r, **lm_eval_percent(r, tasks)} for r in rows if any(r.get(t) is not None for t in tasks.values())]
        if not rows:
            raise ReportError(
                f"no model among {', '.join(map(str, dirs))} was evaluated on a task of Table {number} "
                f"({', '.join(tasks.values())}: evaluation=paper, or lm-eval results files); the mini tasks are "
                "not these"
            )
        paper, source = paper_table_rows(paper_key)
        notes.append(
            "lm-eval scores in %, each task's metric as evaluation/open_llm.py's TASKS names it; Average only where "
            "every task of the table was evaluated. Rows `lm-eval results` are read from lm-eval's own results files."
        )
        notes.append(f"Paper rows: {source}.")
        columns = ["source", "method", "base", "model", *tasks, "Average", "run"]
        out.mkdir(parents=True, exist_ok=True)
        write_table(rows + paper, columns, out / f"table{number}", title, notes)
        return {"rows": len(rows), "out": str(out), "text": (out / f"table{number}.md").read_text()}

    build.__doc__ = f"{title}: every model evaluated on its tasks, then the paper's rows."
    return build


report_table4 = _lm_eval_table("4", TABLE4_TASKS, "open_llm", "Table 4: the Open LLM leaderboard tasks")
report_table5 = _lm_eval_table("5", TABLE5_TASKS, "table5", "Table 5: six more lm-eval tasks, 5-shot")

# Table 7's settings, as `method=seed_only` names its models (synpo/methods/seed_only.py), in the paper's order.
SEED_SETTINGS = {
    "M0": "SFT (M0)",
    "seed_sft": "Seed SFT",
    "seed_po": "Seed PO",
    "seed_sft_po": "Seed SFT + PO",
    "seed_sft_po_multi_epoch": "Seed SFT + PO, multi-epoch",
}


def report_table7(dirs: list[Path], out: Path) -> dict:
    """Table 7: what the seed data alone gives (a `method=seed_only` run) beside SynPO's iterations."""
    rows, notes = table2_rows(dirs)
    rows = [r for r in rows if r["source"] == "this project" and r["method"] in ("sft", "seed_only", "synpo")]
    if not any(r["method"] == "seed_only" for r in rows):
        raise ReportError(
            "no evaluated seed-only run among "
            + ", ".join(map(str, dirs))
            + " (synpo experiment=cpu_seed_only evaluation=demo)"
        )
    for r in rows:
        r["setting"] = SEED_SETTINGS.get(r["model"]) or f"SynPO iteration {r['model'].removeprefix('M')}"
    order = list(SEED_SETTINGS)
    rows.sort(key=lambda r: (r["method"] == "synpo", order.index(r["model"]) if r["model"] in order else 0))
    paper, source = paper_table_rows("table7")
    notes.append(
        "Mini suites' scores (AlpacaEval-style LC / WR, in %, local judge), not the benchmark's. The multi-epoch "
        "variant is Seed SFT + PO's pairs from the Seed SFT model for method.multi_epochs epochs (README, Baselines)."
    )
    notes.append(f"Paper rows: {source} (Llama3-8B; its SynPO row is Table 2's Llama3 iteration 4).")
    columns = ["source", "method", "setting", "base", "model", "AE2 LC", "AE2 WR", "unparsable verdicts", "run"]
    out.mkdir(parents=True, exist_ok=True)
    write_table(rows + paper, columns, out / "table7", "Table 7: seed data only, beside SynPO", notes)
    return {"rows": len(rows), "out": str(out), "text": (out / "table7.md").read_text()}


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
    paper, source = paper_table_rows("table6")
    notes.append(
        f"Paper rows: {source} (Llama3-8B, one iteration on 20k prompts of each source; its `generator` is SynPO's "
        "own prompts, `mix` SynPO + manual; the SynPO / Sampling-Ranking column order is read from a garbled header)."
    )
    out.mkdir(parents=True, exist_ok=True)
    columns = ["source", "method", "prompts", "base", "model", *TABLE2_COLUMNS, "unparsable verdicts", "run"]
    rows = [r for r in rows if r["source"] == "this project"]
    write_table(sorted(rows, key=order) + paper, columns, out / "table6", "Table 6: where the prompts come from", notes)
    return {"rows": len(rows), "out": str(out), "text": (out / "table6.md").read_text()}


TABLES = {
    "2": report_table2,
    "3": report_table3,
    "4": report_table4,
    "5": report_table5,
    "6": report_table6,
    "7": report_table7,
}


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
        help="main: one sweep or run (default); 2-7: the paper's table of that number, from runs (and, for 4 and 5, "
        "lm-eval results files)",
    )
    parser.add_argument("--out", type=Path, help="where to write (default: DIR/report; ./report for --table N)")
    args = parser.parse_args(argv)
    try:
        if args.table in TABLES:
            result = TABLES[args.table](args.dirs, args.out or Path("report"))
            name = f"table{args.table}"
            print(result["text"] + f"\n{result['rows']} rows -> {result['out']}/{name}.md, {name}.csv")
            return 0
        if len(args.dirs) > 1:
            raise ReportError("give one DIR (several run folders go with --table N)")
        result = report(args.dirs[0], args.out or args.dirs[0] / "report")
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"{result['rows']} rows -> {result['out']}/index.html, main.md, main.csv"
        + (", plots: " + ", ".join(result["plots"]) if result["plots"] else "")
    )
    for m in result["missing"]:
        print(f"missing job: {m}")
    return 0
