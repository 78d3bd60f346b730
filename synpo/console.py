"""What a run prints: the stage lines, one progress bar per long step and the tables; everything else that is
logged (lm-eval, datasets, httpx, transformers, the trainers' per-step logs) goes to the job's `synpo.log`.

Hydra's job logging (conf/hydra/job_logging/synpo.yaml) sends every record to `synpo.log` and, through
`ConsoleFilter`, the project's INFO lines and the other libraries' warnings (lm-eval's errors) to the console.
"""

from __future__ import annotations

import logging

# `log.info(..., extra=FILE_ONLY)`: a project line for synpo.log only (a trainer's per-step logs, say).
FILE_ONLY = {"console": False}


class ConsoleFilter(logging.Filter):
    """Pass a record when its level reaches the one `levels` gives its logger (or the logger's nearest listed
    parent), `default` for the others; records logged with FILE_ONLY never pass."""

    def __init__(self, levels: dict[str, str], default: str = "WARNING"):
        super().__init__()
        self.levels = {name: logging.getLevelName(level) for name, level in levels.items()}
        self.default = logging.getLevelName(default)

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "console", True):
            return False
        name = record.name
        while name not in self.levels and "." in name:
            name = name.rsplit(".", 1)[0]
        return record.levelno >= self.levels.get(name, self.default)


def quiet_libraries() -> None:
    """Route transformers' and datasets' own log handlers through Hydra's (so their lines reach synpo.log, and the
    console only as warnings) and turn off their progress bars (weight loading and shard writing, dataset maps);
    the project's bars (generation, scoring) and the trainers' step bars stay."""
    import datasets
    import transformers

    transformers.utils.logging.disable_default_handler()
    transformers.utils.logging.enable_propagation()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("datasets").handlers.clear()  # its own stderr handler; records still propagate to the root
    datasets.disable_progress_bars()
