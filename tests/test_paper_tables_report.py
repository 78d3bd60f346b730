"""`synpo-report --table 3 / 4 / 5 / 7`: MT-Bench, the lm-eval tables and the seed-only ablations, each followed
by the paper's rows.

The real lm-eval tasks of Tables 4 and 5 need the hub, so these tests build their results from fixtures in lm-eval's
own output format (the `results_<date>.json` that `lm_eval --output_path` writes, the dict `simple_evaluate`
returns): a run's summary gets them through the suite's own reader (evaluation.open_llm.scores), and the same files
are also given to the report directly, as for a model evaluated with lm-eval outside synpo.
"""

from __future__ import annotations

import csv
import json

from test_table2_report import evaluated, make_run

from synpo.evaluation.open_llm import TASKS, scores
from synpo.report import main as report_main


def lm_eval_output(model: str, values: dict[str, float]) -> dict:
    """lm-eval 0.4's results for `values` (TASKS key -> score), laid out as lm-eval writes them."""
    results, n_samples = {}, {}
    for key, value in values.items():
        spec = TASKS[key]
        results[spec.task] = {
            "alias": spec.task,
            f"{spec.metric},{spec.filter}": value,
            f"{spec.metric}_stderr,{spec.filter}": 0.01,
            "acc,none" if spec.metric != "acc" else "acc_norm,none": 0.0,  # a metric the table does not use
        }
        n_samples[spec.task] = {"original": 1000, "effective": 1000}
    return {
        "results": results,
        "versions": {TASKS[k].task: 1.0 for k in values},
        "n-shot": {TASKS[k].task: TASKS[k].num_fewshot for k in values},
        "n-samples": n_samples,
        "config": {"model": "hf", "model_args": f"pretrained={model}", "batch_size": 8},
        "model_name": model,
        "model_name_sanitized": model.replace("/", "__"),
        "lm_eval_version": "0.4.13",
    }


def with_lm_eval(evaluation: dict, model: str, values: dict) -> dict:
    """A model's evaluation results plus its lm-eval suite as the suite writes them from lm-eval's output."""
    return {**evaluation, "open_llm": {"metrics": scores(lm_eval_output(model, values))}}


TABLE4_M0 = {"arc": 0.58, "hellaswag": 0.81, "truthfulqa": 0.40, "mmlu": 0.59, "winogrande": 0.76, "gsm8k": 0.35}
TABLE4_M1 = {**TABLE4_M0, "arc": 0.61, "truthfulqa": 0.50}


def test_table4_from_runs_and_from_lm_eval_results_files(tmp_path, capsys):
    m0 = with_lm_eval(evaluated(10.0, 8.0, 5.0), "m0", TABLE4_M0)
    m1 = with_lm_eval(evaluated(12.0, 9.0, 6.0), "m1", {k: v for k, v in TABLE4_M1.items() if k != "gsm8k"})
    make_run(tmp_path / "synpo", "cpu_demo", {"M0": m0, "M1": m1})
    make_run(tmp_path / "sft", "cpu_sft", {"M0": evaluated(10.0, 8.0, 5.0)})  # no lm-eval task: no row
    # Outside synpo: one lm-eval call per shot count, so one results file per task, under <output_path>/<model>/.
    outside = tmp_path / "lm_eval_out" / "org__model"
    outside.mkdir(parents=True)
    for i, (key, value) in enumerate(TABLE4_M1.items()):
        (outside / f"results_2026-01-0{i + 1}.json").write_text(json.dumps(lm_eval_output("org/model", {key: value})))
    out = tmp_path / "report"
    dirs = [str(tmp_path / d) for d in ("synpo", "sft", "lm_eval_out")]
    assert report_main(["--table", "4", *dirs, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader((out / "table4.csv").open()))
    assert list(rows[0])[:11] == [
        "source",
        "method",
        "base",
        "model",
        "ARC",
        "HellaSwag",
        "TruthfulQA",
        "MMLU",
        "Winogrande",
        "GSM8K",
        "Average",
    ]
    ours = [(r["source"], r["method"], r["model"], r["ARC"], r["GSM8K"], r["Average"]) for r in rows[:3]]
    assert ours == [
        ("this project", "sft", "M0", "58.0", "35.0", "58.17"),  # in %, as the paper; the mean of the six
        ("this project", "synpo", "M1", "61.0", "", ""),  # GSM8K not evaluated: no average
        ("lm-eval results", "-", "org/model", "61.0", "35.0", "60.33"),  # six files, one model
    ]
    paper = [r for r in rows[3:]]
    assert {r["source"] for r in paper} == {"paper"} and len(paper) == 10
    mistral_4 = next(r for r in paper if r["base"] == "Mistral-Base" and r["model"] == "iteration 4")
    assert (mistral_4["TruthfulQA"], mistral_4["Average"]) == ("56.12", "61.39")
    md = (out / "table4.md").read_text()
    assert "Table 4: the Open LLM leaderboard tasks" in md and "read from lm-eval's own results files" in md
    assert md.strip() in printed


def test_table5_and_a_refusal_when_no_model_ran_its_tasks(tmp_path, capsys):
    values = {"openbookqa": 0.5, "haerae": 0.4, "mathqa": 0.36, "xnli": 0.44, "toxigen": 0.63, "prost": 0.55}
    make_run(tmp_path / "run", "cpu_demo", {"M0": with_lm_eval({}, "m0", values)})
    out = tmp_path / "report"
    assert report_main(["--table", "5", str(tmp_path / "run"), "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "table5.csv").open()))
    assert [rows[0][c] for c in ("OBQA", "HAE-RAE", "PROST", "Average")] == ["50.0", "40.0", "55.0", "48.0"]
    assert [(r["base"], r["model"], r["Average"]) for r in rows[1:]] == [
        ("Mistral-Base", "SFT", "46.42"),
        ("Mistral-Base", "iteration 4", "48.61"),
        ("Llama3-Base", "SFT", "52.79"),
        ("Llama3-Base", "iteration 4", "55.79"),
    ]
    capsys.readouterr()
    # The demo's mini lm-eval tasks are not Table 4's: a clear refusal, naming the tasks.
    mini = {"open_llm": {"metrics": {"mini_mc": {"score": 0.5}}}}
    make_run(tmp_path / "mini", "cpu_demo", {"M0": mini})
    assert report_main(["--table", "4", str(tmp_path / "mini"), "--out", str(out)]) == 2
    assert "was evaluated on a task of Table 4 (arc, hellaswag" in capsys.readouterr().err


def test_table3_lays_out_mt_bench_turns(tmp_path):
    def mt(t1: float, t2: float) -> dict:
        return {"mt_bench_mini": {"turn_1": t1, "turn_2": t2, "average": (t1 + t2) / 2, "n_unparsable": 1}}

    make_run(tmp_path / "a", "cpu_demo", {"M0": mt(4.0, 3.0), "M1": mt(5.0, 4.5), "M2": mt(6.0, 5.0)})
    make_run(tmp_path / "b", "cpu_sampling_ranking", {"M0": mt(4.0, 3.0), "M1": mt(4.5, 4.0)})
    out = tmp_path / "report"
    assert report_main(["--table", "3", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "table3.csv").open()))
    ours = [(r["method"], r["model"], r["MT-Bench T1"], r["MT-Bench T2"], r["MT-Bench"]) for r in rows[:4]]
    assert ours == [
        ("sft", "M0", "4.0", "3.0", "3.5"),
        ("sampling_ranking", "M1", "4.5", "4.0", "4.25"),
        ("synpo", "M1", "5.0", "4.5", "4.75"),
        ("synpo", "M2", "6.0", "5.0", "5.5"),
    ]
    paper = {(r["base"], r["model"]): r for r in rows[4:]}
    assert all(r["source"] == "paper" for r in rows[4:]) and len(paper) == 10
    assert (paper[("Llama3-Base", "iteration 2")]["MT-Bench T1"], paper[("Llama3-Base", "SFT")]["MT-Bench T2"]) == (
        "7.34",
        "5.36",
    )
    assert "Table 3: MT-Bench, turns 1 and 2" in (out / "table3.md").read_text()


def test_table7_puts_the_seed_only_models_beside_synpo(tmp_path, capsys):
    seed_models = {"seed_sft": 11.0, "seed_po": 9.0, "seed_sft_po": 12.0, "seed_sft_po_multi_epoch": 10.0}
    m0 = evaluated(8.0, 7.0, 5.0)
    make_run(
        tmp_path / "seed", "cpu_seed_only", {"M0": m0, **{m: evaluated(v, v - 1, 0.0) for m, v in seed_models.items()}}
    )
    make_run(tmp_path / "synpo", "cpu_demo", {"M0": m0, "M1": evaluated(13.0, 12.0, 6.0)})
    make_run(tmp_path / "sr", "cpu_sampling_ranking", {"M0": m0, "M1": evaluated(9.0, 8.0, 4.0)})  # not Table 7's
    out = tmp_path / "report"
    dirs = [str(tmp_path / d) for d in ("seed", "synpo", "sr")]
    assert report_main(["--table", "7", *dirs, "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "table7.csv").open()))
    assert [(r["source"], r["setting"], r["AE2 LC"]) for r in rows] == [
        ("this project", "SFT (M0)", "8.0"),
        ("this project", "Seed SFT", "11.0"),
        ("this project", "Seed PO", "9.0"),
        ("this project", "Seed SFT + PO", "12.0"),
        ("this project", "Seed SFT + PO, multi-epoch", "10.0"),
        ("this project", "SynPO iteration 1", "13.0"),
        ("paper", "Seed SFT", "20.1"),
        ("paper", "Seed PO (gold = chosen, M0's answer = rejected)", "11.6"),
        ("paper", "Seed SFT + PO (gold vs the Seed-SFT model's answer)", "24.6"),
        ("paper", "Seed SFT + PO, multi-epoch (2 epochs, chosen over 3)", "22.4"),
        ("paper", "SynPO iteration 4", "32.1"),
    ]
    capsys.readouterr()
    assert report_main(["--table", "7", str(tmp_path / "synpo"), "--out", str(out)]) == 2
    assert "no evaluated seed-only run" in capsys.readouterr().err
