"""What every suite shares: resumable per-item logs, suite data loading, result files, versions."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, is_dataclass
from importlib import metadata
from pathlib import Path

from synpo.errors import DataError, EvaluationError
from synpo.io import read_jsonl, resolve_path, write_json, write_jsonl

log = logging.getLogger(__name__)

PACKAGES = ("synpo", "alpaca-eval", "lm-eval", "transformers", "torch", "scikit-learn", "pandas")


def load_rows(spec: str, key: str, required: Iterable[str]) -> list[dict]:
    """Read a suite file (JSON list or JSONL) whose records must carry `required`; errors name `key`."""
    path = resolve_path(spec)
    if not path.is_file():
        raise EvaluationError(f"{key}={spec!r}: file not found ({path})")
    try:
        if path.suffix == ".json":
            rows = json.loads(path.read_text(encoding="utf-8"))
        else:
            rows = read_jsonl(path)
    except (DataError, json.JSONDecodeError) as e:
        raise EvaluationError(f"{key}={spec!r}: {e}") from None
    if not rows:
        raise EvaluationError(f"{key}={spec!r}: no records ({path})")
    for i, row in enumerate(rows):
        missing = [f for f in required if f not in row]
        if missing:
            raise EvaluationError(f"{key}={spec!r}: record {i} lacks {missing}")
    return rows


class ItemLog:
    """Append-only JSONL of finished items, so a suite that fails half-way resumes where it stopped.

    Each chunk of results is appended and fsynced before the next starts; on reload a torn last line
    (a crash mid-write) is dropped and that item is simply recomputed.
    """

    def __init__(self, path: Path, key: str):
        self.path, self.key = Path(path), key
        self.rows: dict[str, dict] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    log.warning("%s: dropping a torn line", self.path)
                    continue
                self.rows[str(row[key])] = row
            # Rewrite without torn lines so appends start on a clean line.
            write_jsonl(self.path, self.rows.values())

    def __contains__(self, item_id) -> bool:
        return str(item_id) in self.rows

    def append(self, rows: list[dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.rows.update({str(r[self.key]): r for r in rows})

    def fill(self, items: list[dict], compute: Callable[[list[dict]], list[dict]], chunk: int) -> list[dict]:
        """Compute the rows of the items not logged yet, `chunk` at a time; return all rows in item order."""
        todo = [it for it in items if it[self.key] not in self]
        if len(todo) < len(items):
            log.info("%s: %d of %d items already done", self.path.name, len(items) - len(todo), len(items))
        for start in range(0, len(todo), max(1, chunk)):
            self.append(compute(todo[start : start + chunk]))
        return [self.rows[str(it[self.key])] for it in items]


def versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def settings(obj) -> dict:
    """A config or sampling object as plain data for the result file."""
    if is_dataclass(obj):
        return asdict(obj)
    from omegaconf import OmegaConf

    return OmegaConf.to_container(obj, resolve=True) if OmegaConf.is_config(obj) else dict(obj)


def write_result(path: Path, result: dict, started: float) -> dict:
    result = {**result, "seconds": round(time.time() - started, 1), "versions": versions()}
    write_json(path, result)
    log.info("wrote %s", path)
    return result
