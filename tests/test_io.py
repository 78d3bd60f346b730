from __future__ import annotations

import pytest

from synpo.config import SeedDataConfig
from synpo.errors import DataError
from synpo.io import read_jsonl, resolve_path, write_jsonl
from synpo.stages import seed_set


def test_shipped_seed_set_is_large_diverse_and_split():
    train, validation = seed_set.load(
        SeedDataConfig(
            name="seed_demo",
            train_file="pkg://synpo/data/seed_demo/train.jsonl",
            validation_file="pkg://synpo/data/seed_demo/validation.jsonl",
        )
    )
    assert len(train) >= 200 and len(validation) >= 30
    assert not {r["id"] for r in train} & {r["id"] for r in validation}
    assert len({r["category"] for r in train}) >= 10


def test_shipped_corpus_has_300_paragraphs():
    rows = read_jsonl(resolve_path("pkg://synpo/data/corpus_demo/paragraphs.jsonl"), ("text",))
    assert len(rows) >= 300


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"id": "x", "prompt": "p", "gold": "g"', "bad.jsonl:2: not valid JSON"),
        ('["a list"]', "bad.jsonl:2: expected a JSON object"),
        ('{"id": "x", "prompt": "p"}', "bad.jsonl:2: field 'gold' is missing"),
        ('{"id": "x", "prompt": "", "gold": "g"}', "bad.jsonl:2: field 'prompt' is missing"),
    ],
)
def test_malformed_seed_jsonl_names_file_and_line(tmp_path, line, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "p", "gold": "g"}\n' + line + "\n")
    with pytest.raises(DataError, match=message):
        seed_set.load(SeedDataConfig(name="x", train_file=str(bad)))


def test_duplicate_seed_ids_are_refused(tmp_path):
    f = tmp_path / "s.jsonl"
    write_jsonl(f, [{"id": "a", "prompt": "p", "gold": "g"}] * 2)
    with pytest.raises(DataError, match="not unique"):
        seed_set.load(SeedDataConfig(name="x", train_file=str(f)))


def test_write_jsonl_is_atomic_and_leaves_no_temporary_files(tmp_path):
    f = tmp_path / "out.jsonl"
    write_jsonl(f, [{"a": 1}])

    def boom():
        yield {"a": 2}
        raise RuntimeError("crash while producing rows")

    with pytest.raises(RuntimeError):
        write_jsonl(f, boom())
    assert read_jsonl(f) == [{"a": 1}]
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
