"""What a run prints: the stage lines, the progress bars of long steps and the tables on the console; lm-eval's,
transformers' and the other libraries' INFO lines and bars in the job's synpo.log only (conf/hydra/job_logging).

A real `synpo mode=eval` run of the mini lm-eval task on a tiny random model, its stdout / stderr captured."""

from __future__ import annotations

import logging
import re

from synpo.console import FILE_ONLY, ConsoleFilter


def test_an_lm_eval_run_prints_its_stages_and_table_and_logs_the_rest(synpo, tiny_model):
    result = synpo(
        "mode=eval",
        f"checkpoint={tiny_model}",
        "model.source=hub",
        f"model.path={tiny_model}",
        "model.name=tiny",
        "logger=none",
        "evaluation=demo",
        "evaluation.suites=[lm_eval]",
        "evaluation.lm_eval.tasks=[mini_mc]",
        "evaluation.lm_eval.limit=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (log_file,) = synpo.cwd.glob("outputs/*/*/synpo.log")
    logged = log_file.read_text()
    assert "[synpo.stage][INFO] - [eval/checkpoint] running stage evaluate" in result.stdout
    # The evaluation table: its header (the judge-free columns, then the task) and the model's row.
    assert re.search(r"\nmodel  .*\bmini_mc\b", result.stdout) and "\ncheckpoint " in result.stdout
    # lm-eval's INFO lines (and its routine warnings about the shots we set) are in the log, not on the console.
    assert "[lm_eval.evaluator][INFO] - Running loglikelihood requests" in logged
    assert "[lm_eval." not in result.stdout + result.stderr
    assert "[synpo.stage][INFO] - [eval/checkpoint] running stage evaluate" in logged
    # transformers' weight-loading bars are off; lm-eval's request bar stays, as the step's bar.
    assert "Loading weights" not in result.stderr and "Running loglikelihood requests" in result.stderr


def test_the_console_filter_passes_project_info_and_other_libraries_warnings():
    console = ConsoleFilter({"synpo": "INFO", "evaluation": "INFO", "lm_eval": "ERROR"}, default="WARNING")

    def passes(name: str, level: int, **extra) -> bool:
        record = logging.LogRecord(name, level, __file__, 1, "message", None, None)
        record.__dict__.update(extra)
        return console.filter(record)

    assert passes("synpo.stage", logging.INFO) and passes("evaluation.common", logging.INFO)
    assert not passes("synpo.training", logging.INFO, **FILE_ONLY)
    assert not passes("httpx", logging.INFO) and passes("httpx", logging.WARNING)
    assert not passes("datasets.builder", logging.INFO) and not passes("transformers.modeling_utils", logging.INFO)
    assert not passes("lm_eval.evaluator", logging.WARNING) and passes("lm_eval.evaluator", logging.ERROR)
    assert not passes("synpodata", logging.INFO)  # a prefix is a parent logger, not a string prefix
