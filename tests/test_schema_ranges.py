"""Every numeric and choice field of every schema has a declared range or set (synpo/config.py's `rng` / `choice`),
and a value outside it fails at start-up naming the key, before any model loads. A field added without one fails
`test_every_numeric_field_declares_a_range` until it gets one (or a line in EXEMPT, for a truly unbounded field)."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import subprocess
import sys
import types
import typing

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from synpo import config as schemas
from synpo.cli import CONF_DIR, validate
from synpo.errors import ConfigError

# One experiment per method: together they compose every schema (each config holds every group).
EXPERIMENTS = [
    "cpu_demo",
    "cpu_demo_spa",
    "cpu_sft",
    "cpu_offline_simpo",
    "cpu_sampling_ranking",
    "cpu_self_rewarding",
    "cpu_seed_only",
]
# "Schema.field" of numeric fields that are truly unbounded (no range to declare). Keep it short.
EXEMPT: set[str] = set()
# Schemas that are only ever composed through their subclasses.
BASES = {schemas.TrainerConfig, schemas.PromptSourceConfig, schemas.SamplingMethodConfig}


def _compose_all() -> dict[str, DictConfig]:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return {e: compose(config_name="config", overrides=[f"experiment={e}"]) for e in EXPERIMENTS}


CONFIGS = _compose_all()


def _nodes(node: DictConfig, prefix: str = ""):
    yield prefix, node
    for key in node:
        if isinstance(node[key], DictConfig):
            yield from _nodes(node[key], f"{prefix}{key}.")


def _where() -> dict[tuple[type, str], tuple[str, str]]:
    """(schema, field) -> (experiment, dotted key) of its first appearance in the composed configs."""
    found = {}
    for experiment, cfg in CONFIGS.items():
        for prefix, node in _nodes(cfg):
            schema = OmegaConf.get_type(node)
            if dataclasses.is_dataclass(schema):
                for f in dataclasses.fields(schema):
                    found.setdefault((schema, f.name), (experiment, f"{prefix}{f.name}"))
    return found


WHERE = _where()


def _scalar_type(schema: type, name: str):
    """int, float, str, bool or a schema of a field, through `X | None` and `list[X]`."""
    hint = typing.get_type_hints(schema)[name]
    while typing.get_origin(hint) in (typing.Union, types.UnionType, list):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _numeric(schema: type, name: str) -> bool:
    return _scalar_type(schema, name) in (int, float)


def _is_list(schema: type, name: str) -> bool:
    return typing.get_origin(typing.get_type_hints(schema)[name]) is list


def test_every_schema_is_composed():
    defined = {
        c
        for _, c in inspect.getmembers(schemas, inspect.isclass)
        if dataclasses.is_dataclass(c) and c.__module__ == schemas.__name__ and c is not schemas.Valid
    }
    composed = {schema for schema, _ in WHERE}
    assert defined - BASES - composed == set()


def test_every_numeric_field_declares_a_range():
    missing = [
        f"{schema.__name__}.{name} ({key})"
        for (schema, name), (_, key) in sorted(WHERE.items(), key=lambda kv: kv[1][1])
        if _numeric(schema, name)
        and schemas.valid_of(next(f for f in dataclasses.fields(schema) if f.name == name)) is None
        and f"{schema.__name__}.{name}" not in EXEMPT
    ]
    assert not missing, "numeric fields without rng(...) in synpo/config.py (or an EXEMPT line): " + ", ".join(missing)


def _bad_values(valid: schemas.Valid, schema: type, name: str) -> list:
    """Values just outside what `valid` accepts."""
    if valid.choices:
        return ["not_an_option"]
    integer = _scalar_type(schema, name) is int
    step = 1 if integer else 0.5
    bad = []
    if valid.ge is not None:
        bad.append(valid.ge - step)
    if valid.gt is not None:
        bad.append(valid.gt)
    if valid.le is not None:
        bad.append(valid.le + step)
    if not integer:
        bad.append(math.nan)
    return bad


CASES = [
    pytest.param(experiment, key, value, id=f"{key}={value}")
    for (schema, name), (experiment, key) in sorted(WHERE.items(), key=lambda kv: kv[1][1])
    if (valid := schemas.valid_of(next(f for f in dataclasses.fields(schema) if f.name == name)))
    for value in _bad_values(valid, schema, name)
]


@pytest.mark.parametrize("experiment, key, value", CASES)
def test_a_value_out_of_range_fails_at_start_up_naming_the_key(experiment, key, value):
    cfg = copy.deepcopy(CONFIGS[experiment])
    node, _, name = key.rpartition(".")
    parent = OmegaConf.select(cfg, node) if node else cfg
    schema = OmegaConf.get_type(parent)
    parent[name] = [value] if _is_list(schema, name) else value
    with pytest.raises(ConfigError) as e:
        validate(cfg)  # the value is checked first: nothing loads
    assert str(e.value).startswith(f"{key}="), str(e.value)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_the_shipped_values_are_in_range(experiment):
    schemas.check(CONFIGS[experiment])


def test_declared_options_are_the_implemented_ones():
    from transformers import SchedulerType

    from synpo import evaluation
    from synpo.evaluation import open_llm
    from synpo.generation import BACKENDS
    from synpo.methods import METHODS
    from synpo.rewards import REWARDS

    assert set(schemas.REWARDS) == set(REWARDS)
    assert set(schemas.GenerationConfig.__dataclass_fields__["backend"].metadata["valid"].choices) == set(BACKENDS)
    assert set(schemas.SUITES) == set(evaluation.SUITES)
    assert set(schemas.LM_EVAL_TASKS) == set(open_llm.TASKS)
    assert {cfg.method.name for cfg in CONFIGS.values()} == set(METHODS)
    assert set(schemas.LR_SCHEDULERS) <= {s.value for s in SchedulerType}


@pytest.mark.parametrize(
    "override, expected",
    [("method.iterations=-1", "method.iterations=-1"), ("data.train_file={empty}", "{empty} (data.train_file)")],
)
def test_config_and_data_errors_come_before_the_heavy_imports(tmp_path, override, expected):
    """A fresh process (this one has torch already): the error is raised with torch, transformers and TRL unloaded."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code = f"""
import sys
from hydra import compose, initialize_config_dir
from synpo.cli import CONF_DIR, validate
from synpo.errors import SynpoError
with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
    cfg = compose(config_name="config", overrides=[{override.format(empty=empty)!r}])
try:
    validate(cfg)
except SynpoError as e:
    print(e)
print(sorted(m for m in ("torch", "transformers", "trl") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    message, loaded = out.splitlines()
    assert expected.format(empty=empty) in message and loaded == "[]"
