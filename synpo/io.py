"""Reading and writing the JSONL artifacts that stages exchange.

Writes are atomic (temporary file + rename), so a crash never leaves a half-written file behind under
its final name. Reads validate fields and name the file and line of the first bad record.
"""

from __future__ import annotations

import json
import os
import tempfile
from array import array
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path

from synpo.errors import DataError


def resolve_path(spec: str) -> Path:
    """Resolve `pkg://package/relative/path` (data shipped inside a package) or an ordinary path."""
    if spec.startswith("pkg://"):
        package, _, rel = spec[len("pkg://") :].partition("/")
        return Path(str(resources.files(package).joinpath(rel)))
    return Path(spec).expanduser()


def write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    """Write `rows` one line each as they come (a generator is never held whole); returns how many."""
    return _atomic_write(path, (json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def read_jsonl(path: Path, required: Sequence[str] = (), key: str | None = None) -> list[dict]:
    """Read a JSONL file; every record must be an object with the `required` string fields. With `key`, the config
    key that names the file (given for the run's input data), the messages name it and a file with no record fails."""
    rows = list(iter_jsonl(path, required, key))
    if key and not rows:
        raise DataError(f"{Path(path)} ({key}): the file has no records")
    return rows


def iter_jsonl(path: Path, required: Sequence[str] = (), key: str | None = None) -> Iterator[dict]:
    """`read_jsonl` one record at a time, for files too large to hold."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} ({key}): file not found" if key else f"{path}: file not found")
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            for name in required:
                value = row.get(name)
                if not isinstance(value, str) or not value.strip():
                    raise DataError(f"{path}:{lineno}: field '{name}' is missing or not a non-empty string")
            yield row


class JsonlField(Sequence):
    """One string field of every record of a JSONL file, read from disk on indexing: only the byte offsets of the
    lines are held (8 bytes a record), for stages that draw from a large file at random (the keyword lists draw
    50k paragraphs of RefinedWeb's 1M)."""

    def __init__(self, path: Path, field: str):
        self.path, self.field = Path(path), field
        if not self.path.is_file():
            raise DataError(f"{self.path}: file not found")
        self.offsets = array("q")
        with self.path.open("rb") as f:
            offset = 0
            for line in f:
                if line.strip():
                    self.offsets.append(offset)
                offset += len(line)
        self._file = self.path.open("rb")

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i: int) -> str:
        self._file.seek(self.offsets[i])
        line = self._file.readline()
        try:
            value = json.loads(line)[self.field]
        except (json.JSONDecodeError, TypeError, KeyError):
            raise DataError(f"{self.path}: record {i + 1} is not an object with a '{self.field}' field") from None
        return value

    def __enter__(self) -> JsonlField:
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# What `open(path, "w")` would give; mkstemp's 0600 would hide every artifact from the other users of a shared cache.
FILE_MODE = 0o666 & ~_umask()


def atomic_write_text(path: Path, text: str) -> None:
    _atomic_write(path, [text])


def _atomic_write(path: Path, chunks: Iterable[str]) -> int:
    """Write `chunks` to a temporary file beside `path`, then rename it to `path`; returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    count = 0
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for chunk in chunks:
                f.write(chunk)
                count += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count
