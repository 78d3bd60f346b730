"""Loads a mini task's JSON file (splits -> records) from this folder: lm-eval would resolve a plain
`data_files` path against the working directory, not against the task's YAML."""

import json
from pathlib import Path


def load(data_file: str, **metadata):
    import datasets

    splits = json.loads((Path(__file__).parent / data_file).read_text(encoding="utf-8"))
    return datasets.DatasetDict({name: datasets.Dataset.from_list(rows) for name, rows in splits.items()})
