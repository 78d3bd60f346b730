"""M0: resolve the configured SFT model (converting the embedded GGUF once) and record where it is."""

from __future__ import annotations

from pathlib import Path

from synpo.config import ModelConfig
from synpo.io import write_json
from synpo.models import resolve_model


def run(out: Path, config: dict) -> dict:
    model = ModelConfig(**config["model"])
    write_json(out / "model.json", {"path": resolve_model(model, config["models_dir"]), "name": model.name})
    return {}
