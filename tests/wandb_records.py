"""A reader for an offline W&B run's `.wandb` file (wandb 0.31 ships none in Python): wandb's protobuf `Record`s in a
LevelDB-style log. After a 7-byte file header (":W&B", 0xBEE1, version 0) the file is cut into 32 KiB blocks; each
record chunk has a 7-byte header (CRC-32 of the type byte and the data as zlib computes it, little-endian length
on 2 bytes, type: 1 full, 2 first, 3 middle, 4 last) and a block's tail shorter than a header is zero padding."""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

HEADER, BLOCK, CHUNK = 7, 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path):
    """Every Record of the file, in order (each chunk's checksum checked)."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B" and struct.unpack("<H", data[4:6])[0] == 0xBEE1, f"{path}: not a .wandb file"
    pos, pending = HEADER, b""
    while pos + CHUNK <= len(data):
        if BLOCK - pos % BLOCK < CHUNK:  # padding at the end of a block
            pos += BLOCK - pos % BLOCK
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + CHUNK])
        if kind == 0 and length == 0:
            break
        payload = data[pos + CHUNK : pos + CHUNK + length]
        assert zlib.crc32(bytes([kind]) + payload) == crc, f"{path}: bad checksum at byte {pos}"
        pos += CHUNK + length
        if kind == FULL:
            pending = payload
        elif kind == FIRST:
            pending = payload
            continue
        elif kind == MIDDLE:
            pending += payload
            continue
        else:
            pending += payload
        record = wandb_internal_pb2.Record()
        record.ParseFromString(pending)
        yield record
        pending = b""


@dataclass
class Run:
    """What the tests look at in a run: config, group, step metrics, history rows, summary."""

    config: dict = field(default_factory=dict)
    group: str = ""
    step_metrics: dict = field(default_factory=dict)  # metric (or glob) -> its step metric
    history: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    files: Path | None = None

    def table(self, value: dict) -> dict:
        """A logged wandb.Table (a history value of type table-file) as {"columns", "data"}."""
        assert value["_type"] == "table-file", value
        return json.loads((self.files / value["path"]).read_text())

    def series(self, key: str, step: str) -> list[tuple]:
        return [(row[step], row[key]) for row in self.history if key in row]


def items(entries) -> dict:
    """History or summary items as a dict; a logged object (a table) comes as nested keys, put back together."""
    out: dict = {}
    for i in entries:
        *parents, last = list(i.nested_key) or [i.key]
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = json.loads(i.value_json)
    return out


def read_run(run_dir: Path) -> Run:
    """The offline run written under `run_dir` (its `wandb/offline-run-*` folder)."""
    (folder,) = Path(run_dir).glob("wandb/offline-run-*")
    (log,) = folder.glob("*.wandb")
    run = Run(files=folder / "files")
    for r in records(log):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            run.group = r.run.run_group
            run.config.update({i.key: json.loads(i.value_json) for i in r.run.config.update})
        elif kind == "config":
            run.config.update({i.key: json.loads(i.value_json) for i in r.config.update})
        elif kind == "metric":
            name = r.metric.name or r.metric.glob_name
            run.step_metrics[name] = r.metric.step_metric
        elif kind == "history":
            run.history.append(items(r.history.item))
        elif kind == "summary":
            run.summary.update(items(r.summary.update))
    return run
