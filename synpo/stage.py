"""Stages and their content-addressed cache.

A stage is a function `fn(out_dir, config, **inputs) -> counts` that reads its input artifacts (folders)
and writes its outputs into `out_dir`. Its cache key hashes the stage name, the part of the config it
declares, and the keys of its inputs, so the same work is never done twice: a rerun after a crash, or
another job of a sweep, finds the finished entry and reuses it.

An entry becomes visible only when it is complete: the stage writes into `<key>.partial`, then
`manifest.json` (with each file's size and sha256), its files are made read-only, then the folder is renamed to
`<key>`. A lock file per key keeps concurrent jobs from computing the same entry twice; the `.partial` folder is
kept after a crash so that trainers resume from their last checkpoint in it.

Run directories hard-link the entries' files, so a file edited in place in a run directory would change the entry
and every run that links it: finished files are read-only (for everyone but root; the size / sha256 check of
`verify_entry` catches what gets through). To change an artifact, copy it out (`cp --no-preserve=mode`) and edit
the copy. Where the kernel refuses a hard link (another user's read-only file under `fs.protected_hardlinks=1`, a
cache on another file system), the run directory gets a symlink to the entry instead.
"""

from __future__ import annotations

import ast
import fcntl
import functools
import gc
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from synpo.io import read_json, resolve_path, write_json

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# The label of the stage being computed ("iter2/policy"), for code that names its logs after it (trainer curves).
running_label: ContextVar[str | None] = ContextVar("running_label", default=None)


@dataclass(frozen=True)
class Artifact:
    """A finished stage output: a folder in the cache, identified by its key."""

    stage: str
    key: str
    path: Path

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def manifest(self) -> dict:
        return read_json(self.path / MANIFEST)

    @property
    def counts(self) -> dict:
        return self.manifest["counts"]


@dataclass
class StageRecord:
    label: str
    stage: str
    key: str
    reused: bool
    seconds: float
    counts: dict
    path: str


PROJECT_PACKAGES = ("synpo",)


@functools.cache
def _imported_names(origin: str, package: str, size: int, mtime_ns: int) -> tuple[str, ...]:
    """The modules (or `from module import name` candidates) one source file imports, parsed once per
    process and file version: every stage's digest walks the same library modules (`synpo.io`, `synpo.models`...)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(Path(origin).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names += [base, *(f"{base}.{a.name}" for a in node.names)]
    return tuple(names)


@functools.cache
def _spec_origin(module: str) -> tuple[str, bool] | None:
    """(source file, is a package) of a module, or None when it is not a Python source module. A name under a plain
    module (`from synpo.io import read_json` gives `synpo.io.read_json`) is not looked up: find_spec would import its
    parent, and with it the parent's libraries (torch, TRL)."""
    parent = module.rpartition(".")[0]
    if parent and (found := _spec_origin(parent)) is not None and not found[1]:
        return None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # `from pkg import name` where name is not a module
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return spec.origin, spec.submodule_search_locations is not None


def _project_modules(name: str) -> dict[str, str]:
    """{module: source file} of `name` and every project module it imports, directly or not (imports inside
    functions included): the code a stage's outputs depend on."""
    found: dict[str, str] = {}
    todo = [name]
    while todo:
        module = todo.pop()
        if module in found or (spec := _spec_origin(module)) is None:
            continue
        origin, is_package = spec
        found[module] = origin
        package = module if is_package else module.rpartition(".")[0]
        stat = Path(origin).stat()
        names = _imported_names(origin, package, stat.st_size, stat.st_mtime_ns)
        todo += [m for m in names if m.split(".")[0] in PROJECT_PACKAGES]
    return found


@functools.cache
def code_version_of(module: str) -> str:
    h = hashlib.sha256()
    for name, origin in sorted(_project_modules(module).items()):
        h.update(name.encode() + b"\0" + Path(origin).read_bytes() + b"\0")
    return h.hexdigest()[:12]


def code_version(fn: Callable) -> str:
    """A digest of the stage's module and of every project module it imports (the library code it runs, e.g.
    `synpo.training` or the `synpo.evaluation` suites): editing any of them invalidates the stage's cached outputs."""
    return code_version_of(fn.__module__)


@functools.cache
def _digest_of(path: str, size: int, mtime_ns: int) -> str:
    return file_digest(Path(path))


def config_files(config) -> dict[str, str]:
    """The sha256 of every local file the config names (a path or `pkg://...`): a seed, corpus or prompt file edited
    in place changes the key of the stages that read it, as edited code does. Hub ids and folders are left out."""
    found = {}
    todo = [config]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            todo += node.values()
        elif isinstance(node, list | tuple):
            todo += node
        elif isinstance(node, str) and node and (node.startswith("pkg://") or "/" in node or "." in node):
            try:
                path = resolve_path(node)
                st = path.stat() if path.is_file() else None
            except (OSError, ValueError, ModuleNotFoundError):
                st = None
            if st is not None:
                found[node] = _digest_of(str(path.resolve()), st.st_size, st.st_mtime_ns)
    return found


def stage_key(stage: str, config: dict, inputs: dict[str, Artifact], version: str) -> str:
    payload = {
        "stage": stage,
        "code": version,
        "config": config,
        "inputs": {name: art.key for name, art in sorted(inputs.items())},
    }
    files = config_files(config)
    if files:  # stages that name no file keep their keys
        payload["files"] = files
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(folder: Path) -> Iterator[Path]:
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            yield p


def _lock_file(path: Path):
    """The lock file, opened to write, or to read where another user's cache made it read-only to us (`flock`
    works on either)."""
    try:
        return path.open("a")
    except PermissionError:
        return path.open()


@contextmanager
def file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock_file(path) as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def verify_entry(entry: Path, mode: str) -> str | None:
    """Return why a cache entry cannot be trusted, or None when it is intact."""
    try:
        manifest = read_json(entry / MANIFEST)
    except (OSError, ValueError) as e:
        return f"unreadable manifest ({e})"
    for rel, meta in manifest.get("files", {}).items():
        p = entry / rel
        if not p.is_file():
            return f"missing file {rel}"
        if p.stat().st_size != meta["size"]:
            return f"size mismatch in {rel}"
        if mode == "sha256" and file_digest(p) != meta["sha256"]:
            return f"checksum mismatch in {rel}"
    return None


def seal(folder: Path) -> None:
    """Make every file of a finished entry read-only (folders stay writable, so `synpo cache gc` can remove it)."""
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            p.chmod(p.stat().st_mode & ~0o222)


def _link_tree(src: Path, dst: Path) -> None:
    """Make `dst` show the entry's files: hard links (no extra disk, survive cache pruning), else (the kernel refuses
    a link, e.g. to another user's read-only file under protected_hardlinks, or across file systems) a symlink."""
    if dst.is_symlink() or dst.is_file():
        dst.unlink()
    elif dst.exists():
        shutil.rmtree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        for p in src.rglob("*"):
            target = dst / p.relative_to(src)
            if p.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(p, target)
    except OSError:
        shutil.rmtree(dst, ignore_errors=True)
        dst.symlink_to(src, target_is_directory=True)


@dataclass
class Runner:
    """Runs stages through the cache and links every output into the run directory."""

    cache_dir: Path
    run_dir: Path
    verify: str = "size"
    records: list[StageRecord] = field(default_factory=list)
    on_record: Callable[[StageRecord], None] | None = None

    def run(
        self,
        label: str,
        fn: Callable[..., dict],
        *,
        config: dict | None = None,
        inputs: dict[str, Artifact] | None = None,
    ) -> Artifact:
        """Run `fn` (a stage module's `run`; the module names the stage) unless its output is cached."""
        stage = fn.__module__.rsplit(".", 1)[-1]
        config, inputs = config or {}, inputs or {}
        key = stage_key(stage, config, inputs, code_version(fn))
        folder = Path(self.cache_dir) / stage
        entry = folder / key
        start = time.perf_counter()
        with file_lock(folder / f"{key}.lock"):
            reused = entry.is_dir() and self._usable(entry)
            if not reused:
                log.info("[%s] running stage %s (key %s)", label, stage, key)
                token = running_label.set(label)
                try:
                    self._compute(stage, key, fn, config, inputs, entry)
                finally:
                    running_label.reset(token)
        art = Artifact(stage, key, entry)
        _link_tree(entry, Path(self.run_dir) / "stages" / label)
        seconds = art.manifest["seconds"] if reused else time.perf_counter() - start
        record = StageRecord(label, stage, key, reused, seconds, art.counts, str(entry))
        self.records.append(record)
        log.info(
            "[%s] %s in %.1fs: %s",
            label,
            "reused from cache" if reused else "done",
            seconds,
            ", ".join(f"{k}={v}" for k, v in art.counts.items()) or "-",
        )
        if self.on_record:
            self.on_record(record)
        return art

    def _usable(self, entry: Path) -> bool:
        problem = verify_entry(entry, self.verify)
        if problem is None:
            return True
        log.warning("cache entry %s is corrupted (%s): recomputing it", entry, problem)
        shutil.rmtree(entry)
        return False

    def _compute(self, stage, key, fn, config, inputs, entry: Path) -> None:
        # Libraries run full garbage collections inside a stage (accelerate's batch-size finder and free_memory, the
        # generator's release: ~150 in a paper preset's run), each scanning every live object: 0.27 s with torch,
        # transformers and TRL imported. What survives a collection here is frozen, so theirs scan the stage's own
        # objects (what was alive before the stage and is dropped in it is left to reference counting).
        gc.collect()
        gc.freeze()
        partial = entry.with_name(f"{key}.partial")
        partial.mkdir(parents=True, exist_ok=True)
        (partial / MANIFEST).unlink(missing_ok=True)
        started = datetime.now(timezone.utc)
        t0 = time.perf_counter()
        counts = fn(partial, config, **{name: art.path for name, art in inputs.items()}) or {}
        files = {
            str(p.relative_to(partial)): {"size": p.stat().st_size, "sha256": file_digest(p)} for p in _files(partial)
        }
        write_json(
            partial / MANIFEST,
            {
                "stage": stage,
                "key": key,
                "config": config,
                "inputs": {name: {"stage": a.stage, "key": a.key} for name, a in inputs.items()},
                "counts": counts,
                "seconds": round(time.perf_counter() - t0, 3),
                "started": started.isoformat(),
                "host": socket.gethostname(),
                "files": files,
            },
        )
        seal(partial)
        os.replace(partial, entry)
