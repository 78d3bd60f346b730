"""`synpo-report` on a sweep folder and `synpo cache ls/gc` on a real stage cache."""

from __future__ import annotations

import json
import os
import shutil
import time

import stages_for_tests
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from synpo.cache import main as cache_main
from synpo.cli import CONF_DIR
from synpo.report import main as report_main
from synpo.stage import Runner, file_lock


def make_job(folder, overrides, evaluation=None):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, folder / ".hydra" / "config.yaml")
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    stages = [
        {"label": "iter1/pairs", "counts": {"preference_set": 12}, "reused": False},
        {"label": "iter1/policy", "counts": {"train_loss": 1.5}, "reused": False},
        {"label": "iter2/pairs", "counts": {"preference_set": 24}, "reused": False},
        {"label": "iter2/policy", "counts": {"train_loss": 1.2}, "reused": False},
    ]
    summary = {"stages": stages, "models": {"M0": "", "M1": "", "M2": ""}, "evaluation": evaluation or {}}
    (folder / "summary.json").write_text(json.dumps(summary))


def test_report_lays_out_a_partial_sweep_and_names_the_missing_job(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {"task": ["optimizer.beta=2,4"]}}}))
    evaluation = {
        "M1": {"alpaca_eval_mini": {"metrics": {"length_controlled_winrate": 11.0, "win_rate": 9.5}}},
        "M2": {"alpaca_eval_mini": {"metrics": {"length_controlled_winrate": 14.0, "win_rate": 12.0}}},
    }
    make_job(sweep / "0", ["optimizer.beta=2"], evaluation)
    (sweep / "1" / ".hydra").mkdir(parents=True)  # started, never finished
    assert report_main([str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "missing job: optimizer.beta=4" in out
    main_md = (sweep / "report" / "main.md").read_text()
    assert "| 0 | optimizer.beta=2 | synpo | smollm2-135m-instruct | M2 | 2 | 0 | 24 | 1.2 | 14 | 12 |" in main_md
    assert "Mistral-Base" in main_md and "34" in main_md  # the paper's rows, labelled
    assert "Missing jobs (planned, not finished): optimizer.beta=4" in main_md
    assert (sweep / "report" / "main.csv").read_text().count("\n") == 1 + 3 + 10
    assert (sweep / "report" / "ae2_lc_vs_beta.png").stat().st_size > 1000
    assert (sweep / "report" / "ae2_lc_vs_iteration.png").stat().st_size > 1000


def test_report_refuses_a_folder_that_is_not_a_sweep(tmp_path, capsys):
    assert report_main([str(tmp_path)]) == 2
    assert "is not a sweep or run directory" in capsys.readouterr().err


def test_cache_ls_and_gc_keep_entries_in_use(tmp_path, capsys):
    cache = tmp_path / "cache"
    runner = Runner(cache, tmp_path / "run")
    a = runner.run("a", stages_for_tests.run, config={"value": "x"})
    b = runner.run("b", stages_for_tests.run, config={"value": "y"})
    assert cache_main(["--dir", str(cache), "ls"]) == 0
    listing = capsys.readouterr().out
    assert a.key in listing and b.key in listing and "2 entries" in listing
    assert "no unfinished (.partial) folders" in listing
    # A killed run's leftover: counted, sized and dated in one line.
    leftover = cache / "stages_for_tests" / "0123abcd.partial"
    leftover.mkdir()
    (leftover / "checkpoint.bin").write_bytes(b"\0" * 2_000_000)
    os.utime(leftover / "checkpoint.bin", (time.time() - 7200, time.time() - 7200))
    assert cache_main(["--dir", str(cache), "ls"]) == 0
    summary = capsys.readouterr().out.splitlines()[-1]
    assert summary.startswith("1 unfinished (.partial) folders, 2.0 MB, last written 2.0 h to 2.0 h ago, 0 in use")
    shutil.rmtree(leftover)

    assert cache_main(["--dir", str(cache), "gc", "--dry-run"]) == 0
    assert a.path.is_dir() and b.path.is_dir()
    with file_lock(cache / "stages_for_tests" / f"{a.key}.lock"):
        assert cache_main(["--dir", str(cache), "gc"]) == 0
    out = capsys.readouterr().out
    assert f"skip stages_for_tests/{a.key}: in use" in out
    assert a.path.is_dir() and not b.path.exists()
    # The run directory's hard links survive pruning.
    assert (tmp_path / "run" / "stages" / "b" / "value.txt").read_text() == "y"
