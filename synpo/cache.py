"""`synpo cache ls` and `synpo cache gc`: see and prune the stage cache.

The cache lives in `$SYNPO_HOME/stages` (default `~/.cache/synpo/stages`), one folder per stage, one
entry per key. Run directories hold hard links to their entries' files, so pruning never breaks a run (where the
kernel refuses a hard link they hold a symlink, which pruning does break). Finished entries' files are read-only.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import time
from datetime import datetime
from pathlib import Path

from synpo.io import read_json
from synpo.stage import MANIFEST


def default_dir() -> Path:
    home = os.environ.get("SYNPO_HOME") or str(Path.home() / ".cache" / "synpo")
    return Path(home) / "stages"


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _entries(root: Path):
    """(stage, key, folder, finished) for every entry and every unfinished `.partial` folder."""
    for stage in sorted(p for p in root.iterdir() if p.is_dir()):
        for entry in sorted(p for p in stage.iterdir() if p.is_dir()):
            yield stage.name, entry.name, entry, (entry / MANIFEST).is_file() and not entry.name.endswith(".partial")


def _unlocked(lock: Path) -> bool:
    """True when no job holds the entry's lock (so it is safe to delete)."""
    if not lock.exists():
        return True
    with lock.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def _age(seconds: float) -> str:
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{seconds / length:.1f} {unit}"
    return f"{seconds:.0f} s"


def _bytes(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def _last_written(folder: Path) -> float:
    """The newest mtime in an unfinished folder (a trainer writing checkpoints keeps it fresh)."""
    return max((p.stat().st_mtime for p in folder.rglob("*")), default=folder.stat().st_mtime)


def partial_summary(partials: list[tuple[Path, int]]) -> str:
    """One line on the unfinished `.partial` folders (size in bytes each): how many, how old, how much disk."""
    if not partials:
        return "no unfinished (.partial) folders"
    now = time.time()
    ages = [now - _last_written(folder) for folder, _ in partials]
    busy = sum(not _unlocked(folder.parent / f"{folder.name.removesuffix('.partial')}.lock") for folder, _ in partials)
    return (
        f"{len(partials)} unfinished (.partial) folders, {_bytes(sum(s for _, s in partials))}, last written "
        f"{_age(min(ages))} to {_age(max(ages))} ago, {busy} in use by a running job; "
        "`synpo cache gc --unfinished` removes the others (a killed run's leftovers)"
    )


def ls(root: Path) -> int:
    rows, total, partials = [], 0, []
    for stage, key, folder, finished in _entries(root):
        size = _size(folder)
        total += size
        if not finished:
            partials.append((folder, size))
        if finished:
            m = read_json(folder / MANIFEST)
            when, seconds = m["started"][:19].replace("T", " "), f"{m['seconds']:.1f}"
        else:
            when, seconds = datetime.fromtimestamp(folder.stat().st_mtime).isoformat(" ", "seconds"), "unfinished"
        rows.append((stage, key, f"{size / 1e6:.1f}", when, seconds))
    header = ("stage", "key", "MB", "started", "seconds")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
    print(f"{len(rows)} entries, {total / 1e9:.2f} GB in {root}")
    print(partial_summary(partials))
    return 0


def gc(root: Path, older_than_days: float | None, stage: str | None, unfinished: bool, dry_run: bool) -> int:
    cutoff = time.time() - older_than_days * 86400 if older_than_days is not None else None
    freed = removed = 0
    for name, key, folder, finished in _entries(root):
        if stage and name != stage:
            continue
        if unfinished and finished:
            continue
        if cutoff is not None and folder.stat().st_mtime > cutoff:
            continue
        lock = folder.parent / f"{key.removesuffix('.partial')}.lock"
        if not _unlocked(lock):
            print(f"skip {name}/{key}: in use by a running job")
            continue
        size = _size(folder)
        print(f"{'would remove' if dry_run else 'remove'} {name}/{key} ({size / 1e6:.1f} MB)")
        if not dry_run:
            shutil.rmtree(folder)
            lock.unlink(missing_ok=True)
        freed, removed = freed + size, removed + 1
    print(f"{'would free' if dry_run else 'freed'} {freed / 1e9:.2f} GB in {removed} entries")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="synpo cache", description=__doc__)
    parser.add_argument("--dir", type=Path, default=None, help="cache folder (default: $SYNPO_HOME/stages)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ls", help="list entries with size, start time and compute seconds")
    g = sub.add_parser("gc", help="remove entries (all of them unless filtered); entries in use are kept")
    g.add_argument("--older-than", type=float, metavar="DAYS", help="only entries last written before DAYS ago")
    g.add_argument("--stage", help="only this stage (e.g. simpo)")
    g.add_argument("--unfinished", action="store_true", help="only unfinished (.partial) entries")
    g.add_argument("--dry-run", action="store_true", help="list what would be removed")
    args = parser.parse_args(argv)
    root = args.dir or default_dir()
    if not root.is_dir():
        print(f"no stage cache at {root}")
        return 0
    if args.command == "ls":
        return ls(root)
    return gc(root, args.older_than, args.stage, args.unfinished, args.dry_run)
